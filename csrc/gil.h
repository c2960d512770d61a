/* gil.h - where the interpreter's GIL lives, so the handler can tell a thread waiting for the GIL
 * from one blocked on anything else.
 *
 * A thread waiting for the GIL sleeps in futex() on the condition variable or mutex inside
 * CPython's struct _gil_runtime_state (take_gil: COND_TIMED_WAIT(gil->cond, gil->mutex, ...)).
 * The futex address is the syscall's first argument (rdi on x86-64, preserved across the call),
 * so "blocked in a syscall whose rdi points into the GIL struct" means "waiting for the GIL".
 * A thread in time.sleep (clock_nanosleep), a lock acquire (futex elsewhere) or a socket wait
 * (fd in rdi) never matches.
 */
#ifndef AETHER_GIL_H
#define AETHER_GIL_H

#include <stdint.h>

/* The GIL struct of the main interpreter as [*lo, *hi). Call with the GIL held. 0 or -1. */
int ae_gil_range(uintptr_t *lo, uintptr_t *hi);

#endif
