/* codehook.h - never report a freed-and-reused code address under another function's name.
 *
 * The ring holds raw PyCodeObject pointers until the drain resolves them. A code object can die
 * in between (exec'd code, a dropped module), and its address can then be reused by another
 * one. So while sampling we hook code-object death: 3.12+ through PyCode_AddWatcher (DESTROY
 * event), 3.11 by interposing PyCode_Type.tp_dealloc (3.11 has no code watchers). The hook runs
 * with the GIL, before the object is freed, and rewrites every pending ring entry that points at
 * the dying object into a tombstone: an index into a table holding the function's qualname,
 * filename and first line, with the entry's line already resolved. The drain holds a strong
 * reference to every code object it has resolved, so the hook only ever sees unresolved ones.
 */
#ifndef AETHER_CODEHOOK_H
#define AETHER_CODEHOOK_H

#include <Python.h>

#include "ring.h"

/* GIL held. 0 or -1 with a Python exception set. */
int ae_codehook_install(ae_ring_t *ring);
/* GIL held. Safe to call when not installed. */
void ae_codehook_uninstall(void);

/* Tombstones written this session (GIL held). Borrowed references, valid until ae_tomb_clear(). */
size_t ae_tomb_count(void);
int ae_tomb_get(size_t index, PyObject **qualname, PyObject **filename, int *first_line);
void ae_tomb_clear(void);
/* How many dying code objects had pending samples (for the profile's metadata). */
uint64_t ae_codehook_rescued(void);

#endif
