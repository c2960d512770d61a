/* alloc.h - allocation tracking through PyMem_SetAllocator hooks on the RAW, MEM and OBJ domains.
 *
 * The hooks wrap the allocators that were installed when tracking started (pymalloc, libc, the
 * debug hooks, or another tool's wrappers) and record, after the wrapped call returns:
 *  - exact mode: every block allocated after start, with the allocating thread's Python stack
 *    (walked by ae_frames_walk on the calling thread, interned in C) in a pointer table;
 *  - sampled mode: every block's size in the same pointer table (so frees are exact and cheap),
 *    but a stack only for blocks hit by a Poisson byte-sampling countdown (mean `sample_rate`).
 * Totals (allocated/freed bytes and blocks, current, peak) are exact in both modes: they count the
 * blocks allocated after start and the frees of those blocks, so allocated - freed is always the
 * sum of the sizes in the pointer table.
 *
 * Rules the hooks keep: no GIL taken, no Python API (Py_INCREF of a code object excepted, and
 * only when the calling thread holds the GIL), no allocation through any hooked domain (tables
 * live in anonymous mappings), and a thread-local initial-exec reentrancy flag set around the
 * wrapped call so a nested domain (OBJ -> pymalloc -> RAW) is not counted twice.
 */
#ifndef AETHER_ALLOC_H
#define AETHER_ALLOC_H

#include <Python.h>
#include <stdint.h>

#include "ring.h"

enum ae_alloc_mode {
    AE_ALLOC_EXACT = 0,
    AE_ALLOC_SAMPLED = 1,
};

/* Frames kept per stack (innermost ones). The walk buffer lives on the hook's C stack. */
#define AE_ALLOC_MAX_DEPTH 256
/* Stack id of a block without a recorded stack: sampled mode's unsampled blocks. */
#define AE_ALLOC_NO_STACK 0xFFFFFFFFu
/* Stack id 0 is always the empty stack: threads without a Python thread state, and threads that
 * met a not-yet-interned stack while not holding the GIL (see `unattributed`). */
#define AE_ALLOC_EMPTY_STACK 0u

typedef struct {
    uint64_t allocated_bytes, allocations; /* blocks allocated since start */
    uint64_t freed_bytes, frees;           /* frees of those blocks */
    uint64_t current_bytes, peak_bytes;    /* allocated - freed, and its maximum */
    uint64_t live_blocks;                  /* entries of the pointer table */
    uint64_t sampled_allocations;          /* blocks that got a stack (exact: every block) */
    uint64_t stacks;                       /* distinct stacks interned */
    uint64_t unattributed;                 /* new stacks seen without the GIL: recorded as empty */
    uint64_t untracked;                    /* blocks lost because a table could not grow */
    uint64_t foreign_frees;                /* frees of blocks allocated before start (not counted) */
    uint64_t start_ns, stop_ns;            /* CLOCK_MONOTONIC; stop_ns 0 while running */
} ae_alloc_stats_t;

/* One live block as handed to the binding. */
typedef struct {
    uint64_t ptr;
    uint64_t size;
    uint64_t time_ns; /* since start, CLOCK_MONOTONIC_COARSE ticks (0: unsampled block) */
    uint32_t stack;   /* stack id, or AE_ALLOC_NO_STACK */
    int32_t tid;
} ae_live_t;

/* GIL held. Install the hooks and start recording. 0, -EBUSY if already running, -EINVAL for a
 * bad argument, -ENOMEM when the tables cannot be mapped. Drops the previous session's data. */
int ae_alloc_start(int mode, uint64_t sample_rate, int max_depth);
/* GIL held. Stop recording (the tables stay readable) and uninstall the hooks if nobody wrapped
 * them since; otherwise they stay installed and inert. -EINVAL if not running. */
int ae_alloc_stop(void);
/* GIL held, not running: drop the tables and release the code objects the stacks hold. */
void ae_alloc_reset(void);
int ae_alloc_running(void);

void ae_alloc_stats(ae_alloc_stats_t *out);

/* What one stack allocated since start, freed or not: the blocks recorded with it (`hits`: exact
 * mode every block, sampled mode the sampled ones) and their weighted sums (exact: weight 1;
 * sampled: unbiased estimates). `growths` counts reallocs that grew a tracked block (a list or
 * bytes object resized again and again). */
typedef struct {
    uint64_t hits;
    double count, bytes, growths;
} ae_stack_totals_t;

/* GIL held. The live blocks (sampled mode: only those with a stack) in a fresh mapping; release
 * it with ae_alloc_live_free. 0 or -ENOMEM. */
int ae_alloc_live(ae_live_t **out, size_t *count);
void ae_alloc_live_free(ae_live_t *blocks, size_t count);

/* GIL held. Copy stack `id` (innermost first) into out[0..max); returns its depth, or -1 for an
 * unknown id. Every code pointer in it is held by a strong reference until ae_alloc_reset. */
int ae_alloc_stack(uint32_t id, ae_frame_t *out, int max);

/* Copy stack `id`'s totals into *out; 0, or -1 for an unknown id. Ids run 0..stats.stacks-1. */
int ae_alloc_stack_totals(uint32_t id, ae_stack_totals_t *out);

/* Ignore (1) or record again (0) the allocations of the calling thread; its frees are still
 * recorded. The binding sets it while it builds snapshots, so the tracker does not track itself. */
void ae_alloc_ignore_thread(int ignore);

#endif
