/* frames.h - the one interface over CPython's per-version frame layout.
 *
 * The handler calls ae_frames_walk() on the interrupted thread. Everything version-specific lives
 * in frames_py3XX.h, selected at compile time (one extension build per minor version).
 */
#ifndef AETHER_FRAMES_H
#define AETHER_FRAMES_H

#include <Python.h>

#include "ring.h"

/* Walk `tstate`'s Python frames, innermost first, into out[0..max). Stores only the code pointer
 * and instruction offset of each complete frame: no reference counting, no allocation, no Python
 * API beyond plain reads, so it is safe in a signal handler on the thread that owns `tstate`.
 * With out == NULL it only counts (the handler counts first, then reserves exactly that much
 * ring space and walks again into it: the thread is stopped in our handler, so the chain cannot
 * change between the two walks).
 * Returns the number of frames stored; sets *truncated when frames were left out for lack of
 * room or when the chain looked corrupt (a cycle, or longer than any sane stack). */
int ae_frames_walk(PyThreadState *tstate, ae_frame_t *out, int max, int *truncated);

/* The thread state bound to the calling thread, whether or not it holds the GIL (the "attached"
 * getters return NULL while the thread runs a C call that released the GIL). Signal-safe. */
PyThreadState *ae_this_thread_state(void);

/* Nonzero if `tstate` currently holds the GIL. Signal-safe (plain reads). */
int ae_holds_gil(PyThreadState *tstate);

/* Nonzero once the interpreter started finalizing: frames may be torn down under us. */
int ae_interpreter_finalizing(void);

#endif
