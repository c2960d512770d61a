/* alloc.h - allocation tracking through PyMem_SetAllocator hooks on the RAW, MEM and OBJ domains.
 *
 * The hooks wrap the allocators that were installed when tracking started (pymalloc, libc, the
 * debug hooks, or another tool's wrappers) and record, after the wrapped call returns:
 *  - exact mode: every block allocated after start, with the allocating thread's Python stack
 *    (walked by ae_frames_walk on the calling thread, interned in C) in a pointer table, plus
 *    per-stack live bytes/blocks (for the peak snapshot);
 *  - sampled mode: every block's size in a lock-free size shadow indexed by address (so frees
 *    are exact and cheap), but a stack only for blocks hit by a Poisson byte-sampling countdown
 *    (mean `sample_rate`), which go to the pointer table with their stack.
 * Totals (allocated/freed bytes and blocks) are exact in both modes and kept per thread: they
 * count the blocks allocated after start and the frees of those blocks, so allocated - freed is
 * always the bytes of the blocks still live. The current heap is exact in both modes; the peak is
 * exact in exact mode and within 64 KiB per thread in sampled mode (see alloc.c).
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
    uint64_t threads;                      /* threads that recorded (each has a slot) */
} ae_alloc_stats_t;

/* Exact totals of one thread (tid -1: the threads past the slot limit, together). Frees are
 * counted on the thread that freed. */
typedef struct {
    int64_t tid;
    uint64_t allocated_bytes, allocations, freed_bytes, frees;
} ae_thread_stats_t;

/* One stack's live bytes and blocks at the captured peak (exact mode). */
typedef struct {
    uint64_t bytes, count;
    uint32_t stack;
    int32_t reserved;
} ae_peak_row_t;

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

/* Per-thread totals of the current (or last) session, in a fresh mapping of `capacity` rows of
 * which `count` are filled; release it with ae_alloc_threads_free(rows, capacity). 0 or -ENOMEM. */
int ae_alloc_threads(ae_thread_stats_t **out, size_t *count, size_t *capacity);
void ae_alloc_threads_free(ae_thread_stats_t *rows, size_t capacity);

/* Exact mode: copy every stack's live bytes/blocks if the heap is above the last captured level
 * (the hook also captures by itself each time the heap grows 1/16 + 1 MiB past it, and stop
 * captures once more). 1 if this call captured a new peak, else 0. Any thread, no GIL needed. */
int ae_alloc_capture_peak(void);
/* GIL held. The stacks live at the captured peak (rows with count > 0) in a fresh mapping;
 * *heap_bytes: the heap at that capture, *at_ns: when, since start. 0 or -ENOMEM. */
int ae_alloc_peak(ae_peak_row_t **out, size_t *count, uint64_t *heap_bytes, uint64_t *at_ns);
void ae_alloc_peak_free(ae_peak_row_t *rows, size_t count);

/* GIL held, in a forked child (from os.register_at_fork): uninstall the hooks the child
 * inherited (recording was already turned off by the pthread_atfork child handler). */
void ae_alloc_after_fork_child(void);
/* 1 if sampled mode's size shadow is in use: some region is mapped and none failed to map (a
 * region that failed sends the blocks of its 4 GiB of addresses to the locked table). */
int ae_alloc_sampled_shadow(void);
/* GIL held, while running: also record what C extensions (and the libraries they loaded)
 * allocate with malloc/calloc/realloc/free/posix_memalign/aligned_alloc/memalign/valloc and
 * anonymous mmap/munmap/mremap, by patching their GOT slots (see got.h); dlopen of the interpreter is
 * hooked too, so modules imported later are patched as they load. Returns the number of slots
 * patched or -errno. ae_alloc_native_stop (before ae_alloc_stop) restores every slot. */
int ae_alloc_native_start(void);
int ae_alloc_native_stop(void);
void ae_alloc_native_counts(size_t *objects, size_t *slots);
/* Tests only: hold the allocator lock for `ns` nanoseconds (call without the GIL). */
void ae_alloc_debug_hold_lock(uint64_t ns);

#endif
