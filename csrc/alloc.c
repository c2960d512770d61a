/* alloc.c - see alloc.h.
 *
 * Locking: one spinlock (with sched_yield after a short spin, since the holder may be a thread
 * without the GIL that got preempted) guards the pointer table, the stack tables and the
 * counters. Every thread that allocates through Python holds the GIL except RAW users, so it is
 * almost never contended; the critical sections are a hash insert or delete (and, rarely, a table
 * growth by mmap). The frame walk runs before the lock is taken.
 *
 * Teardown: `active` is re-checked under the lock, and the tables are unmapped only under the
 * lock after `active` went to 0, so a hook still running on another thread after stop can never
 * touch freed tables.
 *
 * Code-object lifetime: an interned stack holds a strong reference to each of its code objects
 * (Py_INCREF when the stack is first interned; the interning thread holds the GIL) until
 * ae_alloc_reset, so a code pointer in the table can never be reused by another function and the
 * binding can resolve it at any time. A thread that does not hold the GIL (a RAW allocation in a
 * nogil region) cannot take references: it may reuse an already interned stack (its code objects
 * are pinned, so equal pointers mean the same live objects), and otherwise records the empty
 * stack and counts it in `unattributed`.
 */
#define _GNU_SOURCE
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "frames.h"

#define AE_TLS __thread __attribute__((tls_model("initial-exec")))

/* Per-thread state: plain, trivially destructible TLS read without __tls_get_addr (which can
 * allocate), so it is usable from a free() that runs during thread teardown. */
static AE_TLS int in_hook;          /* reentrancy guard, set around the wrapped call */
static AE_TLS int ignore_allocs;    /* ae_alloc_ignore_thread */
static AE_TLS int32_t cached_tid;
static AE_TLS int64_t countdown;    /* sampled mode: bytes until the next sample point */
static AE_TLS uint32_t countdown_session;
static AE_TLS uint64_t rng;

typedef struct {
    uintptr_t ptr; /* 0 = empty slot */
    uint64_t size;
    uint64_t time_ns;
    uint32_t stack;
    int32_t tid;
} ae_block_t;

typedef struct {
    uint64_t hash;
    uint64_t offset; /* into the frame arena */
    uint32_t depth;
    uint32_t reserved;
    ae_stack_totals_t sum; /* every allocation made with this stack since start (see alloc.h) */
} ae_stack_t;

static atomic_flag lock = ATOMIC_FLAG_INIT;
static _Atomic int active;
static _Atomic uint32_t session; /* bumped per start: re-draws the per-thread countdowns */
static int mode;
static uint64_t sample_rate;
static int max_depth;

/* Pointer table: open addressing, linear probing, backward-shift deletion, <= 50% full. */
static ae_block_t *blocks;
static size_t blocks_cap, blocks_len;
/* Stacks: records (id -> frames), a frame arena, and an open-addressing index of ids + 1. */
static ae_stack_t *stacks;
static size_t stacks_cap, stacks_len;
static ae_frame_t *arena;
static size_t arena_cap, arena_len;
static uint32_t *stack_index;
static size_t stack_index_cap;

static ae_alloc_stats_t totals;

static PyMemAllocatorEx saved[3];
static int installed[3];

static inline void lock_acquire(void)
{
    int spins = 0;
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {
        if (++spins < 64)
            __builtin_ia32_pause();
        else
            sched_yield();
    }
}

static inline void lock_release(void)
{
    atomic_flag_clear_explicit(&lock, memory_order_release);
}

static uint64_t clock_read(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
    return clock_read(CLOCK_MONOTONIC);
}

/* Allocation times: CLOCK_MONOTONIC_COARSE (a vDSO read of the last tick, resolution 1-4 ms).
 * A precise clock_gettime was 28% of exact mode's run time on a VM whose clock source is not
 * the TSC; tick resolution is plenty for "when did this leak grow". */
static uint64_t start_coarse_ns;

static inline uint64_t alloc_time_ns(void)
{
    uint64_t t = clock_read(CLOCK_MONOTONIC_COARSE);
    return t > start_coarse_ns ? t - start_coarse_ns : 0;
}

static inline int32_t this_tid(void)
{
    if (cached_tid == 0)
        cached_tid = (int32_t)syscall(SYS_gettid);
    return cached_tid;
}

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap(void *p, size_t bytes)
{
    if (p != NULL && bytes != 0)
        munmap(p, bytes);
}

/* Grow an mmap'd array to hold `need` items of `item` bytes (doubling). 0 or -1. */
static int grow_array(void **base, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap)
        return 0;
    size_t capacity = *cap ? *cap : 1024;
    while (capacity < need)
        capacity *= 2;
    void *p = *base == NULL ? map_zeroed(capacity * item)
                            : mremap(*base, *cap * item, capacity * item, MREMAP_MAYMOVE);
    if (p == NULL || p == MAP_FAILED)
        return -1;
    *base = p;
    *cap = capacity;
    return 0;
}

static inline size_t ptr_slot(uintptr_t p, size_t mask)
{
    return (size_t)(((uint64_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 17) & mask;
}

/* ------------------------------------------------------------------------------------------ */
/* Pointer table (lock held). */

static int blocks_grow(void)
{
    size_t capacity = blocks_cap * 2;
    ae_block_t *grown = map_zeroed(capacity * sizeof(ae_block_t));
    if (grown == NULL)
        return -1;
    size_t mask = capacity - 1;
    for (size_t i = 0; i < blocks_cap; i++) {
        if (blocks[i].ptr == 0)
            continue;
        size_t j = ptr_slot(blocks[i].ptr, mask);
        while (grown[j].ptr != 0)
            j = (j + 1) & mask;
        grown[j] = blocks[i];
    }
    unmap(blocks, blocks_cap * sizeof(ae_block_t));
    blocks = grown;
    blocks_cap = capacity;
    return 0;
}

static int blocks_remove(uintptr_t p, ae_block_t *out)
{
    size_t mask = blocks_cap - 1;
    size_t i = ptr_slot(p, mask);
    while (blocks[i].ptr != p) {
        if (blocks[i].ptr == 0)
            return 0;
        i = (i + 1) & mask;
    }
    *out = blocks[i];
    /* Backward-shift: move later entries of the probe run into the hole when their home slot
     * is not cyclically within (hole, entry]. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (blocks[j].ptr == 0)
            break;
        size_t home = ptr_slot(blocks[j].ptr, mask);
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            blocks[i] = blocks[j];
            i = j;
        }
    }
    blocks[i].ptr = 0;
    blocks_len--;
    return 1;
}

static void account_free(const ae_block_t *b)
{
    totals.freed_bytes += b->size;
    totals.frees++;
    totals.current_bytes -= b->size;
}

static void blocks_insert(const ae_block_t *b)
{
    if ((blocks_len + 1) * 2 > blocks_cap && blocks_grow() != 0) {
        totals.untracked++;
        return;
    }
    size_t mask = blocks_cap - 1;
    size_t i = ptr_slot(b->ptr, mask);
    while (blocks[i].ptr != 0) {
        if (blocks[i].ptr == b->ptr) {
            /* Its free went by unseen (a wrapper installed above ours that bypassed us): the old
             * block is gone. */
            account_free(&blocks[i]);
            blocks_len--;
            break;
        }
        i = (i + 1) & mask;
    }
    blocks[i] = *b;
    blocks_len++;
    totals.allocated_bytes += b->size;
    totals.allocations++;
    totals.current_bytes += b->size;
    if (totals.current_bytes > totals.peak_bytes)
        totals.peak_bytes = totals.current_bytes;
}

/* ------------------------------------------------------------------------------------------ */
/* Stack interning (lock held). */

static uint64_t hash_frames(const ae_frame_t *frames, int depth)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)depth;
    for (int i = 0; i < depth; i++) {
        h = (h ^ (uint64_t)frames[i].code) * 0x100000001b3ull;
        h = (h ^ (uint64_t)(uint32_t)frames[i].lasti) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static int stack_index_grow(void)
{
    size_t capacity = stack_index_cap ? stack_index_cap * 2 : 4096;
    uint32_t *grown = map_zeroed(capacity * sizeof(uint32_t));
    if (grown == NULL)
        return -1;
    size_t mask = capacity - 1;
    for (size_t i = 0; i < stack_index_cap; i++) {
        uint32_t slot = stack_index[i];
        if (slot == 0)
            continue;
        size_t j = (size_t)stacks[slot - 1].hash & mask;
        while (grown[j] != 0)
            j = (j + 1) & mask;
        grown[j] = slot;
    }
    unmap(stack_index, stack_index_cap * sizeof(uint32_t));
    stack_index = grown;
    stack_index_cap = capacity;
    return 0;
}

/* The id of `frames`, interning it when `can_pin` (GIL held); AE_ALLOC_EMPTY_STACK otherwise or
 * when memory ran out. */
static uint32_t stack_intern(const ae_frame_t *frames, int depth, int can_pin)
{
    if (depth == 0)
        return AE_ALLOC_EMPTY_STACK;
    uint64_t h = hash_frames(frames, depth);
    size_t mask = stack_index_cap - 1;
    size_t i = (size_t)h & mask;
    uint32_t slot;
    while ((slot = stack_index[i]) != 0) {
        ae_stack_t *s = &stacks[slot - 1];
        if (s->hash == h && s->depth == (uint32_t)depth &&
            memcmp(arena + s->offset, frames, (size_t)depth * sizeof(ae_frame_t)) == 0)
            return slot - 1;
        i = (i + 1) & mask;
    }
    if (!can_pin) {
        totals.unattributed++;
        return AE_ALLOC_EMPTY_STACK;
    }
    if (stacks_len >= AE_ALLOC_NO_STACK - 1 ||
        grow_array((void **)&stacks, &stacks_cap, stacks_len + 1, sizeof(ae_stack_t)) != 0 ||
        grow_array((void **)&arena, &arena_cap, arena_len + (size_t)depth, sizeof(ae_frame_t)) != 0) {
        totals.unattributed++;
        return AE_ALLOC_EMPTY_STACK;
    }
    if ((stacks_len + 1) * 2 > stack_index_cap) {
        if (stack_index_grow() != 0) {
            totals.unattributed++;
            return AE_ALLOC_EMPTY_STACK;
        }
        mask = stack_index_cap - 1;
        i = (size_t)h & mask;
        while (stack_index[i] != 0)
            i = (i + 1) & mask;
    }
    uint32_t id = (uint32_t)stacks_len++;
    stacks[id].hash = h;
    stacks[id].offset = arena_len;
    stacks[id].depth = (uint32_t)depth;
    memcpy(arena + arena_len, frames, (size_t)depth * sizeof(ae_frame_t));
    arena_len += (size_t)depth;
    for (int k = 0; k < depth; k++) /* the frames' code objects are alive: our frames hold them */
        Py_INCREF((PyObject *)frames[k].code);
    stack_index[i] = id + 1;
    totals.stacks = stacks_len;
    return id;
}

/* ------------------------------------------------------------------------------------------ */
/* Recording (called with in_hook set, never with the lock held). */

static inline uint64_t next_random(void)
{
    if (rng == 0)
        rng = (now_ns() ^ ((uint64_t)this_tid() << 32)) | 1;
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

/* An exponential draw with mean sample_rate: the gap to the next Poisson sample point. */
static int64_t draw_countdown(void)
{
    double u = ((double)(next_random() >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double gap = -log(u) * (double)sample_rate;
    return gap < 1.0 ? 1 : (gap > 9.0e18 ? (int64_t)9e18 : (int64_t)gap);
}

/* Sampled mode: does a sample point fall inside these `size` bytes of this thread's stream? */
static inline int sample_hit(size_t size)
{
    uint32_t current = atomic_load_explicit(&session, memory_order_relaxed);
    if (countdown_session != current) {
        countdown_session = current;
        countdown = draw_countdown();
    }
    countdown -= (int64_t)size;
    if (countdown > 0)
        return 0;
    countdown = draw_countdown(); /* memoryless: later points in this block do not matter */
    return 1;
}

/* Record a new block `p` of `size` bytes, and (realloc) the end of `old`. */
static void record(void *p, size_t size, const ae_block_t *old)
{
    ae_frame_t frames[AE_ALLOC_MAX_DEPTH];
    int depth = 0, can_pin = 0, with_stack = 0, truncated;
    ae_block_t b;
    b.ptr = (uintptr_t)p;
    if (p != NULL && !ignore_allocs) {
        with_stack = mode == AE_ALLOC_EXACT || sample_hit(size);
        if (with_stack) {
            PyThreadState *tstate = ae_this_thread_state();
            if (tstate != NULL && !ae_interpreter_finalizing()) {
                depth = ae_frames_walk(tstate, frames, max_depth, &truncated);
                can_pin = ae_holds_gil(tstate);
            }
        }
    } else {
        b.ptr = 0;
    }
    uint64_t t = with_stack ? alloc_time_ns() : 0;
    /* The block's weight in the per-stack sums: 1 (exact), or the inverse of its chance to hold
     * a sample point (sampled), the same unbiasing the binding applies to live blocks. */
    double weight = 1.0;
    if (with_stack && mode == AE_ALLOC_SAMPLED)
        weight = 1.0 / -expm1(-(double)size / (double)sample_rate);
    lock_acquire();
    if (!atomic_load_explicit(&active, memory_order_relaxed)) {
        lock_release();
        return;
    }
    if (old != NULL)
        account_free(old);
    if (b.ptr != 0) {
        b.size = size;
        b.tid = this_tid();
        if (with_stack) {
            b.stack = stack_intern(frames, depth, can_pin);
            b.time_ns = t;
            totals.sampled_allocations++;
            if (b.stack < stacks_len) {
                ae_stack_totals_t *sum = &stacks[b.stack].sum;
                sum->hits++;
                sum->count += weight;
                sum->bytes += weight * (double)size;
                if (old != NULL && size > old->size)
                    sum->growths += weight;
            }
        } else {
            b.stack = AE_ALLOC_NO_STACK;
            b.time_ns = 0;
        }
        blocks_insert(&b);
    }
    lock_release();
}

/* Remove `p` from the table into *out; 1 if it was tracked. `freed`: count it freed now (free);
 * otherwise the caller counts it once realloc succeeded, or puts it back. */
static int take(void *p, ae_block_t *out, int freed)
{
    int found = 0;
    lock_acquire();
    if (atomic_load_explicit(&active, memory_order_relaxed)) {
        found = blocks_remove((uintptr_t)p, out);
        if (!found)
            totals.foreign_frees++;
        else if (freed)
            account_free(out);
    }
    lock_release();
    return found;
}

static void put_back(const ae_block_t *b)
{
    lock_acquire();
    if (atomic_load_explicit(&active, memory_order_relaxed)) {
        blocks_insert(b);
        /* Not a new allocation: undo the counting blocks_insert did. */
        totals.allocated_bytes -= b->size;
        totals.allocations--;
    }
    lock_release();
}

/* ------------------------------------------------------------------------------------------ */
/* The hooks: one set per domain, each using its own saved allocator (and installed with the
 * original's ctx), so a thread that reads the allocator struct while it is being replaced can
 * only ever pair a function with a ctx that works for it. */

#define AE_DEFINE_HOOKS(D)                                                                     \
    static void *hook_malloc_##D(void *ctx, size_t size)                                      \
    {                                                                                          \
        if (in_hook)                                                                           \
            return saved[D].malloc(ctx, size);                                                 \
        in_hook = 1;                                                                           \
        void *p = saved[D].malloc(ctx, size);                                                  \
        if (p != NULL && atomic_load_explicit(&active, memory_order_relaxed))                  \
            record(p, size, NULL);                                                             \
        in_hook = 0;                                                                           \
        return p;                                                                              \
    }                                                                                          \
    static void *hook_calloc_##D(void *ctx, size_t nelem, size_t elsize)                      \
    {                                                                                          \
        if (in_hook)                                                                           \
            return saved[D].calloc(ctx, nelem, elsize);                                        \
        in_hook = 1;                                                                           \
        void *p = saved[D].calloc(ctx, nelem, elsize);                                         \
        if (p != NULL && atomic_load_explicit(&active, memory_order_relaxed))                  \
            record(p, nelem * elsize, NULL);                                                   \
        in_hook = 0;                                                                           \
        return p;                                                                              \
    }                                                                                          \
    static void *hook_realloc_##D(void *ctx, void *ptr, size_t size)                          \
    {                                                                                          \
        if (in_hook)                                                                           \
            return saved[D].realloc(ctx, ptr, size);                                           \
        in_hook = 1;                                                                           \
        ae_block_t old;                                                                        \
        int had = ptr != NULL && atomic_load_explicit(&active, memory_order_relaxed) &&        \
                  take(ptr, &old, 0);                                                          \
        void *p = saved[D].realloc(ctx, ptr, size);                                            \
        if (p == NULL) {                                                                       \
            if (had)                                                                           \
                put_back(&old);                                                                \
        } else if (had || atomic_load_explicit(&active, memory_order_relaxed)) {              \
            record(p, size, had ? &old : NULL);                                                \
        }                                                                                      \
        in_hook = 0;                                                                           \
        return p;                                                                              \
    }                                                                                          \
    static void hook_free_##D(void *ctx, void *ptr)                                           \
    {                                                                                          \
        if (in_hook || ptr == NULL) {                                                          \
            saved[D].free(ctx, ptr);                                                           \
            return;                                                                            \
        }                                                                                      \
        in_hook = 1;                                                                           \
        ae_block_t old;                                                                        \
        /* Before the real free: once freed, another thread may get the address back. */       \
        if (atomic_load_explicit(&active, memory_order_relaxed))                               \
            take(ptr, &old, 1);                                                                \
        saved[D].free(ctx, ptr);                                                               \
        in_hook = 0;                                                                           \
    }

AE_DEFINE_HOOKS(0)
AE_DEFINE_HOOKS(1)
AE_DEFINE_HOOKS(2)

static const PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};

static void hooks_for(int d, PyMemAllocatorEx *out)
{
    out->ctx = saved[d].ctx;
    switch (d) {
    case 0:
        out->malloc = hook_malloc_0, out->calloc = hook_calloc_0;
        out->realloc = hook_realloc_0, out->free = hook_free_0;
        break;
    case 1:
        out->malloc = hook_malloc_1, out->calloc = hook_calloc_1;
        out->realloc = hook_realloc_1, out->free = hook_free_1;
        break;
    default:
        out->malloc = hook_malloc_2, out->calloc = hook_calloc_2;
        out->realloc = hook_realloc_2, out->free = hook_free_2;
        break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Control (GIL held). */

int ae_alloc_running(void)
{
    return atomic_load(&active);
}

int ae_alloc_start(int new_mode, uint64_t rate, int depth)
{
    if (atomic_load(&active))
        return -EBUSY;
    if ((new_mode != AE_ALLOC_EXACT && new_mode != AE_ALLOC_SAMPLED) ||
        (new_mode == AE_ALLOC_SAMPLED && rate == 0) || depth < 1)
        return -EINVAL;
    ae_alloc_reset();
    blocks_cap = 1 << 16;
    blocks = map_zeroed(blocks_cap * sizeof(ae_block_t));
    if (blocks == NULL || stack_index_grow() != 0) {
        ae_alloc_reset();
        return -ENOMEM;
    }
    mode = new_mode;
    sample_rate = rate;
    max_depth = depth > AE_ALLOC_MAX_DEPTH ? AE_ALLOC_MAX_DEPTH : depth;
    stacks_len = 1; /* id 0: the empty stack */
    if (grow_array((void **)&stacks, &stacks_cap, 1, sizeof(ae_stack_t)) != 0) {
        ae_alloc_reset();
        return -ENOMEM;
    }
    memset(&totals, 0, sizeof(totals));
    totals.stacks = 1;
    totals.start_ns = now_ns();
    start_coarse_ns = clock_read(CLOCK_MONOTONIC_COARSE);
    atomic_fetch_add(&session, 1);
    for (int d = 0; d < 3; d++) {
        if (installed[d])
            continue; /* left installed (and inert) by an earlier session: still wraps saved[d] */
        PyMem_GetAllocator(domains[d], &saved[d]);
        PyMemAllocatorEx hooks;
        hooks_for(d, &hooks);
        PyMem_SetAllocator(domains[d], &hooks);
        installed[d] = 1;
    }
    atomic_store(&active, 1);
    return 0;
}

int ae_alloc_stop(void)
{
    if (!atomic_load(&active))
        return -EINVAL;
    lock_acquire();
    atomic_store(&active, 0);
    totals.stop_ns = now_ns();
    totals.live_blocks = blocks_len;
    lock_release();
    for (int d = 0; d < 3; d++) {
        PyMemAllocatorEx current, ours;
        PyMem_GetAllocator(domains[d], &current);
        hooks_for(d, &ours);
        /* Someone wrapped us since (tracemalloc, another tool): removing ourselves would cut
         * them off; stay installed, inert, and keep saved[d] for the next session. */
        if (installed[d] && current.malloc == ours.malloc) {
            PyMem_SetAllocator(domains[d], &saved[d]);
            installed[d] = 0;
        }
    }
    return 0;
}

void ae_alloc_reset(void)
{
    lock_acquire();
    if (atomic_load(&active)) {
        lock_release();
        return;
    }
    ae_block_t *old_blocks = blocks;
    size_t old_blocks_cap = blocks_cap;
    ae_stack_t *old_stacks = stacks;
    size_t old_stacks_cap = stacks_cap;
    ae_frame_t *old_arena = arena;
    size_t old_arena_cap = arena_cap, old_arena_len = arena_len;
    uint32_t *old_index = stack_index;
    size_t old_index_cap = stack_index_cap;
    blocks = NULL, blocks_cap = blocks_len = 0;
    stacks = NULL, stacks_cap = stacks_len = 0;
    arena = NULL, arena_cap = arena_len = 0;
    stack_index = NULL, stack_index_cap = 0;
    lock_release();
    /* Outside the lock: a decref may free a code object, whose free goes through our hooks. */
    for (size_t i = 0; i < old_arena_len; i++)
        Py_DECREF((PyObject *)old_arena[i].code);
    unmap(old_blocks, old_blocks_cap * sizeof(ae_block_t));
    unmap(old_stacks, old_stacks_cap * sizeof(ae_stack_t));
    unmap(old_arena, old_arena_cap * sizeof(ae_frame_t));
    unmap(old_index, old_index_cap * sizeof(uint32_t));
}

void ae_alloc_stats(ae_alloc_stats_t *out)
{
    lock_acquire();
    *out = totals;
    if (atomic_load_explicit(&active, memory_order_relaxed))
        out->live_blocks = blocks_len;
    lock_release();
}

int ae_alloc_live(ae_live_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    lock_acquire();
    size_t n = 0;
    for (size_t i = 0; i < blocks_cap; i++)
        if (blocks[i].ptr != 0 && blocks[i].stack != AE_ALLOC_NO_STACK)
            n++;
    ae_live_t *live = n ? map_zeroed(n * sizeof(ae_live_t)) : NULL;
    if (n != 0 && live == NULL) {
        lock_release();
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < blocks_cap && k < n; i++) {
        ae_block_t *b = &blocks[i];
        if (b->ptr == 0 || b->stack == AE_ALLOC_NO_STACK)
            continue;
        live[k].ptr = b->ptr;
        live[k].size = b->size;
        live[k].time_ns = b->time_ns;
        live[k].stack = b->stack;
        live[k].tid = b->tid;
        k++;
    }
    lock_release();
    *out = live;
    *count = k;
    return 0;
}

void ae_alloc_live_free(ae_live_t *blocks_out, size_t count)
{
    unmap(blocks_out, count * sizeof(ae_live_t));
}

int ae_alloc_stack(uint32_t id, ae_frame_t *out, int max)
{
    int depth = -1;
    lock_acquire();
    if (id < stacks_len) {
        ae_stack_t *s = &stacks[id];
        depth = (int)s->depth < max ? (int)s->depth : max;
        if (depth > 0)
            memcpy(out, arena + s->offset, (size_t)depth * sizeof(ae_frame_t));
    }
    lock_release();
    return depth;
}

void ae_alloc_ignore_thread(int ignore)
{
    ignore_allocs = ignore;
}

int ae_alloc_stack_totals(uint32_t id, ae_stack_totals_t *out)
{
    int found = -1;
    lock_acquire();
    if (id < stacks_len) {
        *out = stacks[id].sum;
        found = 0;
    }
    lock_release();
    return found;
}
