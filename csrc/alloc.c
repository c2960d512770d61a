/* alloc.c - see alloc.h.
 *
 * Two recording paths share the hooks:
 *
 * Exact mode (and sampled mode's slow path): one spinlock (with sched_yield after a short spin,
 * since the holder may be a thread without the GIL that got preempted) guards the pointer table,
 * the stack tables, the per-stack live totals and the heap current/peak. Every thread that
 * allocates through Python holds the GIL except RAW users, so it is almost never contended; the
 * critical sections are a hash insert or delete (and, rarely, a table growth by mmap or a peak
 * capture). The frame walk runs before the lock is taken.
 *
 * Sampled mode's fast path takes no lock and does no atomic read-modify-write: the thread's
 * counters live in its own slot (see "Per-thread totals"), the Poisson countdown in TLS, and the
 * size of an unsampled block in the size shadow (see "Size shadow"), an array indexed by
 * address in which each live block owns its entry exclusively. Only blocks hit by a sample point, blocks of
 * 64 KiB or more and oddly aligned blocks go to the locked table; their shadow entry says so,
 * which is the quick-reject for frees: a free takes the lock only when the shadow points there.
 *
 * Teardown: `active` is re-checked under the lock, and the locked tables are unmapped only under
 * the lock after `active` went to 0, so a locked-path hook still running on another thread after
 * stop can never touch freed tables. The lock-free structures (slots, shadow) are mapped once and
 * never unmapped (only zeroed between sessions), so a fast-path hook that read `active` just
 * before stop cannot fault either. HAZARD: such a straggler (only possible for a RAW allocation on
 * a thread without the GIL, racing stop() and reset()) may add one event to a zeroed slot or
 * shadow entry of the next session; it cannot corrupt memory.
 *
 * Fork: pthread_atfork takes the lock in `prepare` (so no other thread holds it at the moment of
 * fork) and, in the child, releases it and turns recording off; the child is single-threaded and
 * its copy of the tables is the parent's state at fork. The binding uninstalls the hooks in the
 * child later, from os.register_at_fork (PyMem_SetAllocator takes runtime locks on 3.13 that are
 * only reinitialised after the pthread_atfork child handlers ran).
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

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "frames.h"
#include "got.h"

#define AE_TLS __thread __attribute__((tls_model("initial-exec")))
#define AE_LIKELY(x) __builtin_expect(!!(x), 1)
#define AE_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Per-thread state: plain, trivially destructible TLS read without __tls_get_addr (which can
 * allocate), so it is usable from a free() that runs during thread teardown. */
struct ae_slot;
/* One TLS block, so a hook finds all of it from one offset (each initial-exec variable of a
 * shared object costs a GOT load of its own offset). */
static AE_TLS struct {
    int t_in_hook;                /* reentrancy guard, set around the wrapped call */
    int t_ignore_allocs;          /* ae_alloc_ignore_thread */
    struct ae_slot *t_my_slot;    /* this thread's slot (see "Per-thread totals") */
    uint32_t t_my_slot_session;   /* the session my_slot belongs to */
    int32_t t_cached_tid;
    uint64_t t_rng;
    uint64_t t_realloc_from;      /* a realloc's tracked old size while it records the new block */
} ae_tls;
#define in_hook (ae_tls.t_in_hook)
#define realloc_from (ae_tls.t_realloc_from)
#define ignore_allocs (ae_tls.t_ignore_allocs)
#define my_slot (ae_tls.t_my_slot)
#define my_slot_session (ae_tls.t_my_slot_session)
#define cached_tid (ae_tls.t_cached_tid)
#define rng (ae_tls.t_rng)

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
    uint64_t live_bytes, live_count; /* blocks with this stack in the pointer table now */
} ae_stack_t;

static atomic_flag lock = ATOMIC_FLAG_INIT;
static _Atomic int active;
static _Atomic uint32_t session; /* bumped per start: threads claim new slots */
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

/* Locked totals: the heap's current and peak (exact mode), sampled/stack/loss counters. The
 * allocated/freed counts and bytes live in the per-thread slots in both modes. */
static ae_alloc_stats_t totals;

/* Peak capture (exact mode, lock held): per-stack live bytes/count copied when the heap passed
 * the last captured level. */
static ae_peak_row_t *peak_rows;
static size_t peak_cap, peak_len;
static uint64_t peak_heap, peak_at_ns, peak_next_auto;
#define AE_PEAK_AUTO_MIN (1u << 20)

static PyMemAllocatorEx saved[3];
static int installed[3];

/* ------------------------------------------------------------------------------------------ */
/* Per-thread totals.
 *
 * Each thread that records claims a slot (one atomic fetch-add per thread per session) in an
 * array that is mapped once and never moves, and from then on writes only its own slot with
 * plain (relaxed) loads and stores; readers sum the slots. A slot outlives its thread, so the
 * totals of threads that exited stay counted. Slot 0 is shared by the threads past AE_SLOTS and
 * is updated with atomic adds. */

#define AE_SLOTS 16384
#define AE_FLUSH_BYTES (64 << 10)

typedef struct ae_slot {
    uint64_t allocated_bytes, allocations, freed_bytes, frees, foreign_frees;
    int64_t unflushed; /* sampled mode: net bytes not yet added to flushed_current */
    int64_t countdown; /* sampled mode: bytes until this thread's next sample point. HAZARD: the
                        * shared slot's countdown is raced by its threads (a benign race: at
                        * worst a sample point is skipped or taken twice) */
    int32_t tid;
    int32_t shared;
} ae_slot_t; /* one cache line */

static ae_slot_t *slots;        /* AE_SLOTS entries, mapped on first start, never unmapped */
static _Atomic size_t slots_used;

/* Sampled mode's heap level for the peak: the sum of the flushed per-thread nets. Each thread
 * flushes when its unflushed net passes +-AE_FLUSH_BYTES, so the level (and the peak taken from
 * it) lags the exact sum by less than AE_FLUSH_BYTES per thread. */
static _Atomic int64_t flushed_current;
static _Atomic int64_t flushed_peak;

/* ------------------------------------------------------------------------------------------ */
/* Size shadow (sampled mode): one uint16 per 16-byte granule of the 47-bit user address space,
 * in regions of 512 MiB (MAP_NORESERVE) each covering 4 GiB of addresses, mapped on first use
 * from the hook and published in a directory by CAS; only the pages behind the heap are ever
 * touched (1/8 of its footprint). Every allocator the hooks wrap returns 16-byte aligned blocks
 * on x86-64 (pymalloc's ALIGNMENT, glibc's MALLOC_ALIGNMENT), so two live blocks never share a
 * granule and each entry is written only by whoever owns the block: at allocation, and at free
 * before the real free hands the address back. Regions live as long as the process (zeroed
 * between sessions), so a straggling hook can never touch unmapped memory. Entry values: */
#define AE_SHADOW_NONE 0u      /* not allocated by the program since start */
#define AE_SHADOW_TABLE 0xFFFFu /* in the pointer table (sampled, or too large for the shadow) */
#define AE_SHADOW_MAX_SIZE 0xFFFDu /* otherwise size + 1 */
#define AE_SHADOW_BITS 47
#define AE_SHADOW_REGION_BITS 32
#define AE_SHADOW_REGIONS ((size_t)1 << (AE_SHADOW_BITS - AE_SHADOW_REGION_BITS))
#define AE_SHADOW_REGION_BYTES (((size_t)1 << (AE_SHADOW_REGION_BITS - 4)) * sizeof(uint16_t))
#define AE_SHADOW_FAILED ((uint16_t *)1) /* a region that could not be mapped: use the table */

/* AE_SHADOW_REGIONS region pointers (256 KiB of BSS: zero pages until used). */
static uint16_t *shadow_dir[AE_SHADOW_REGIONS];

static __attribute__((noinline)) uint16_t *shadow_region_create(size_t r)
{
    uint16_t *expected = NULL;
    void *p = mmap(NULL, AE_SHADOW_REGION_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint16_t *region = p == MAP_FAILED ? AE_SHADOW_FAILED : p;
    if (!__atomic_compare_exchange_n(&shadow_dir[r], &expected, region, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        if (region != AE_SHADOW_FAILED) /* another thread won the race */
            munmap(region, AE_SHADOW_REGION_BYTES);
        region = expected;
    }
    return region;
}

/* The shadow entry of `p`: 1 with *entry set; 0 if nothing was ever recorded in the shadow around
 * `p` (no region, and `create` is 0); -1 if `p` has no usable entry (unaligned, out of range, or
 * its region could not be mapped): such blocks live in the locked table. */
static inline __attribute__((always_inline)) int shadow_find(uintptr_t p, int create,
                                                            uint16_t **entry)
{
    if (AE_UNLIKELY(((p & 15u) | (p >> AE_SHADOW_BITS)) != 0))
        return -1;
    size_t r = p >> AE_SHADOW_REGION_BITS;
    uint16_t *region = __atomic_load_n(&shadow_dir[r], __ATOMIC_ACQUIRE);
    if (AE_UNLIKELY(region == NULL)) {
        if (!create)
            return 0;
        region = shadow_region_create(r);
    }
    if (AE_UNLIKELY(region == AE_SHADOW_FAILED))
        return -1;
    *entry = &region[(p & (((uintptr_t)1 << AE_SHADOW_REGION_BITS) - 1)) >> 4];
    return 1;
}

static inline uint16_t shadow_load(const uint16_t *e)
{
    return __atomic_load_n(e, __ATOMIC_RELAXED);
}

static inline void shadow_store(uint16_t *e, uint16_t v)
{
    __atomic_store_n(e, v, __ATOMIC_RELAXED);
}

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
/* Counting. The slot counters are exact in both modes; the table counters (per-stack live
 * bytes/count, exact mode's current/peak) change only under the lock. */

static void net_flush(int64_t delta)
{
    int64_t level = atomic_fetch_add_explicit(&flushed_current, delta, memory_order_relaxed) + delta;
    int64_t peak = atomic_load_explicit(&flushed_peak, memory_order_relaxed);
    while (level > peak && !atomic_compare_exchange_weak_explicit(&flushed_peak, &peak, level,
                                                                  memory_order_relaxed,
                                                                  memory_order_relaxed))
        ;
}

/* The shared overflow slot: every counter by atomic add. */
static __attribute__((noinline)) void count_shared(ae_slot_t *s, uint64_t *count, uint64_t *bytes,
                                                   uint64_t size, int64_t net)
{
    __atomic_fetch_add(count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(bytes, size, __ATOMIC_RELAXED);
    (void)s;
    if (mode == AE_ALLOC_SAMPLED)
        net_flush(net);
}

/* Only the owning thread writes its slot, so the counters are plain increments (no lock prefix).
 * Readers load them with relaxed atomics: an aligned 8-byte store never tears on x86-64, so a
 * reader sees each counter either before or after an event. */
static inline __attribute__((always_inline)) void count_event(int m, ae_slot_t *s, uint64_t *count,
                                                              uint64_t *bytes, uint64_t size,
                                                              int64_t net)
{
    if (AE_UNLIKELY(s->shared)) {
        count_shared(s, count, bytes, size, net);
        return;
    }
    *count += 1;
    *bytes += size;
    if (m == AE_ALLOC_SAMPLED) {
        /* Sampled mode: the thread's net change since its last flush (see flushed_current). */
        int64_t n = s->unflushed + net;
        if (AE_UNLIKELY(n >= AE_FLUSH_BYTES || n <= -AE_FLUSH_BYTES)) {
            s->unflushed = 0;
            net_flush(n);
        } else {
            s->unflushed = n;
        }
    }
}

/* `m` is the session's mode; a compile-time constant where the caller knows it. */
#define count_alloc_m(m, s, size)                                                              \
    count_event((m), (s), &(s)->allocations, &(s)->allocated_bytes, (size), (int64_t)(size))
#define count_free_m(m, s, size)                                                               \
    count_event((m), (s), &(s)->frees, &(s)->freed_bytes, (size), -(int64_t)(size))

static inline __attribute__((always_inline)) void count_alloc(ae_slot_t *s, uint64_t size)
{
    count_alloc_m(mode, s, size);
}

static inline __attribute__((always_inline)) void count_free(ae_slot_t *s, uint64_t size)
{
    count_free_m(mode, s, size);
}

static inline __attribute__((always_inline)) void count_foreign(ae_slot_t *s)
{
    if (AE_UNLIKELY(s->shared))
        __atomic_fetch_add(&s->foreign_frees, 1, __ATOMIC_RELAXED);
    else
        s->foreign_frees++;
}

static int64_t draw_countdown(void);

static __attribute__((noinline)) ae_slot_t *slot_claim(uint32_t now)
{
    /* One atomic per thread per session. Slots are never reused within a session. */
    size_t i = atomic_fetch_add_explicit(&slots_used, 1, memory_order_relaxed);
    ae_slot_t *s = &slots[0];
    if (i < AE_SLOTS) {
        s = &slots[i];
        s->tid = this_tid();
        if (mode == AE_ALLOC_SAMPLED)
            s->countdown = draw_countdown();
    }
    my_slot = s;
    my_slot_session = now;
    return s;
}

static inline __attribute__((always_inline)) ae_slot_t *slot_get(void)
{
    uint32_t now = atomic_load_explicit(&session, memory_order_relaxed);
    if (AE_LIKELY(my_slot_session == now))
        return my_slot;
    return slot_claim(now);
}

/* Peak capture (lock held, exact mode): copy every stack's live bytes/count. Called from the
 * hook when the heap passes the last captured level by 1/16 + 1 MiB (a geometric series, so a
 * growing heap pays O(stacks x log(heap)) in all), and from ae_alloc_capture_peak (a poll) and
 * ae_alloc_stop whenever the heap is above the last captured level at all. */
static __attribute__((noinline)) void peak_capture_locked(void)
{
    uint64_t heap = totals.current_bytes;
    peak_next_auto = heap + heap / 16 + AE_PEAK_AUTO_MIN;
    if (grow_array((void **)&peak_rows, &peak_cap, stacks_len, sizeof(ae_peak_row_t)) != 0)
        return; /* keep the older capture; retried at the next level */
    for (size_t i = 0; i < stacks_len; i++) {
        peak_rows[i].bytes = stacks[i].live_bytes;
        peak_rows[i].count = stacks[i].live_count;
        peak_rows[i].stack = (uint32_t)i;
    }
    peak_len = stacks_len;
    peak_heap = heap;
    peak_at_ns = now_ns() - totals.start_ns;
}

static inline __attribute__((always_inline)) void table_counted_in(const ae_block_t *b)
{
    if (b->stack != AE_ALLOC_NO_STACK && b->stack < stacks_len) {
        stacks[b->stack].live_bytes += b->size;
        stacks[b->stack].live_count++;
    }
    if (mode == AE_ALLOC_EXACT) {
        totals.current_bytes += b->size;
        if (totals.current_bytes > totals.peak_bytes)
            totals.peak_bytes = totals.current_bytes;
        if (AE_UNLIKELY(totals.current_bytes >= peak_next_auto))
            peak_capture_locked();
    }
}

static inline __attribute__((always_inline)) void table_counted_out(const ae_block_t *b)
{
    if (b->stack != AE_ALLOC_NO_STACK && b->stack < stacks_len) {
        stacks[b->stack].live_bytes -= b->size;
        stacks[b->stack].live_count--;
    }
    if (mode == AE_ALLOC_EXACT)
        totals.current_bytes -= b->size;
}

/* ------------------------------------------------------------------------------------------ */
/* Pointer table (lock held). The table functions do not count; their callers do. */

static __attribute__((noinline)) int blocks_grow(void)
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

static inline __attribute__((always_inline)) int blocks_remove(uintptr_t p, ae_block_t *out)
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

/* Insert `b`. 0, or 1 when an entry for the same address was still there (its free went by
 * unseen: a wrapper installed above ours that bypassed us) and was replaced (copied to
 * *displaced), or -1 when the table could not grow. */
static inline __attribute__((always_inline)) int blocks_insert(const ae_block_t *b, ae_block_t *displaced)
{
    if ((blocks_len + 1) * 2 > blocks_cap && blocks_grow() != 0)
        return -1;
    int replaced = 0;
    size_t mask = blocks_cap - 1;
    size_t i = ptr_slot(b->ptr, mask);
    while (blocks[i].ptr != 0) {
        if (blocks[i].ptr == b->ptr) {
            *displaced = blocks[i];
            replaced = 1;
            blocks_len--;
            break;
        }
        i = (i + 1) & mask;
    }
    blocks[i] = *b;
    blocks_len++;
    return replaced;
}

/* A new block into the table, counted (lock held). 0, or -1 if it is untracked. */
static inline __attribute__((always_inline)) int insert_counted(const ae_block_t *b, ae_slot_t *s)
{
    ae_block_t displaced;
    int r = blocks_insert(b, &displaced);
    if (r < 0) {
        totals.untracked++;
        return -1;
    }
    if (r == 1) {
        table_counted_out(&displaced);
        count_free(s, displaced.size);
    }
    table_counted_in(b);
    count_alloc(s, b->size);
    if (b->stack != AE_ALLOC_NO_STACK)
        totals.sampled_allocations++;
    return 0;
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
static inline __attribute__((always_inline)) uint32_t stack_intern_slow(const ae_frame_t *frames, int depth,
                                                            int can_pin)
{
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
    stacks[id].sum = (ae_stack_totals_t){0};
    stacks[id].live_bytes = stacks[id].live_count = 0;
    memcpy(arena + arena_len, frames, (size_t)depth * sizeof(ae_frame_t));
    arena_len += (size_t)depth;
    for (int k = 0; k < depth; k++) /* the frames' code objects are alive: our frames hold them */
        Py_INCREF((PyObject *)frames[k].code);
    stack_index[i] = id + 1;
    totals.stacks = stacks_len;
    return id;
}

static inline __attribute__((always_inline)) uint32_t stack_intern(const ae_frame_t *frames,
                                                                     int depth, int can_pin)
{
    if (depth == 0)
        return AE_ALLOC_EMPTY_STACK;
    return stack_intern_slow(frames, depth, can_pin);
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
static inline __attribute__((always_inline)) int sample_hit(ae_slot_t *s, size_t size)
{
    s->countdown -= (int64_t)size;
    if (AE_LIKELY(s->countdown > 0))
        return 0;
    s->countdown = draw_countdown(); /* memoryless: later points in this block do not matter */
    return 1;
}

/* Walk the calling thread's Python stack into frames; *can_pin: it holds the GIL. */
/* The thread state holding the GIL, if it is the calling thread's: the common case (MEM and OBJ
 * callers must hold the GIL), answered by one runtime read instead of a TSS lookup plus a
 * holds-GIL test. The thread-id check keeps us on our own thread's frames even when a caller
 * breaks that rule or a RAW allocation comes from a thread without the GIL: then the attached
 * state is another thread's, and walk_here takes the general path. */
static inline PyThreadState *attached_here(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *ts = PyThreadState_GetUnchecked();
#else
    PyThreadState *ts = _PyThreadState_UncheckedGet();
#endif
    return ts != NULL && ts->thread_id == (unsigned long)pthread_self() ? ts : NULL;
}

static inline int walk_here(ae_frame_t *frames, int *can_pin)
{
    int truncated;
    PyThreadState *tstate = attached_here();
    if (AE_LIKELY(tstate != NULL)) {
        *can_pin = 1;
    } else {
        tstate = ae_this_thread_state();
        *can_pin = 0;
        if (tstate == NULL)
            return 0;
        *can_pin = ae_holds_gil(tstate);
    }
    if (ae_interpreter_finalizing())
        return 0;
    return ae_frames_walk(tstate, frames, max_depth, &truncated);
}

/* A block taken out of the records by a free or realloc, until the wrapped call decided. */
typedef struct {
    ae_block_t b;  /* its table entry, when in_table */
    uint64_t size;
    int in_table;
} ae_taken_t;

/* Add a block just recorded with `stack` to that stack's since-start sums (lock held), with
 * `weight` 1 in exact mode and the unbiasing weight in sampled mode. A realloc that grew a block
 * it replaced (realloc_from, set by the realloc hooks around the record) counts as a growth: many
 * of them from one line are a list or bytes object resized again and again. */
static inline void stack_sum_add(uint32_t stack, size_t size, double weight)
{
    if (stack >= stacks_len)
        return;
    ae_stack_totals_t *sum = &stacks[stack].sum;
    sum->hits++;
    sum->count += weight;
    sum->bytes += weight * (double)size;
    if (realloc_from != 0 && size > realloc_from)
        sum->growths += weight;
}

/* ---- exact mode ---- */

/* Record the new block `p` of `size` bytes with its stack. */
static __attribute__((noinline)) void record_exact(void *p, size_t size, ae_slot_t *s)
{
    ae_frame_t frames[AE_ALLOC_MAX_DEPTH];
    int can_pin = 0;
    if (ignore_allocs)
        return;
    int depth = walk_here(frames, &can_pin);
    ae_block_t b;
    b.ptr = (uintptr_t)p;
    b.size = size;
    b.tid = this_tid();
    b.time_ns = alloc_time_ns();
    lock_acquire();
    if (atomic_load_explicit(&active, memory_order_relaxed)) {
        b.stack = stack_intern(frames, depth, can_pin);
        insert_counted(&b, s);
        stack_sum_add(b.stack, size, 1.0);
    }
    lock_release();
}

/* Take `p` out of the table (not yet counted as freed); 1 if it was tracked. */
static __attribute__((noinline)) int take_locked_table(uintptr_t p, ae_taken_t *out, ae_slot_t *s)
{
    int found = 0;
    out->in_table = 0;
    lock_acquire();
    if (atomic_load_explicit(&active, memory_order_relaxed)) {
        found = blocks_remove(p, &out->b);
        if (found) {
            table_counted_out(&out->b);
            out->size = out->b.size;
            out->in_table = 1;
        }
    }
    lock_release();
    if (!found)
        count_foreign(s);
    return found;
}

/* ---- sampled mode ---- */

/* The slow path: a sampled block (with its stack), a large or oddly aligned one (without). */
static __attribute__((noinline)) void record_sampled_slow(uintptr_t a, size_t size, int hit,
                                                          ae_slot_t *s, uint16_t *e)
{
    ae_frame_t frames[AE_ALLOC_MAX_DEPTH];
    int depth = 0, can_pin = 0, ok = -1;
    if (hit)
        depth = walk_here(frames, &can_pin);
    ae_block_t b;
    b.ptr = a;
    b.size = size;
    b.tid = this_tid();
    b.time_ns = hit ? alloc_time_ns() : 0;
    b.stack = AE_ALLOC_NO_STACK;
    lock_acquire();
    if (atomic_load_explicit(&active, memory_order_relaxed)) {
        if (hit)
            b.stack = stack_intern(frames, depth, can_pin);
        ok = insert_counted(&b, s);
        if (hit) /* the inverse of the block's chance to hold a sample point: unbiased sums */
            stack_sum_add(b.stack, size, 1.0 / -expm1(-(double)size / (double)sample_rate));
    }
    lock_release();
    if (e != NULL)
        shadow_store(e, ok == 0 ? AE_SHADOW_TABLE : AE_SHADOW_NONE);
}

/* The fast path: a TLS countdown, a shadow store and the thread's own counters. */
static inline __attribute__((always_inline)) void record_sampled(void *p, size_t size,
                                                                 ae_slot_t *s)
{
    if (ignore_allocs)
        return;
    uintptr_t a = (uintptr_t)p;
    int hit = sample_hit(s, size);
    uint16_t *e = NULL;
    if (AE_LIKELY(shadow_find(a, 1, &e) == 1)) {
        uint16_t prev = shadow_load(e);
        if (AE_LIKELY(!hit && size <= AE_SHADOW_MAX_SIZE && prev != AE_SHADOW_TABLE)) {
            if (AE_UNLIKELY(prev != AE_SHADOW_NONE))
                count_free(s, prev - 1u); /* a block whose free went by unseen */
            shadow_store(e, (uint16_t)(size + 1));
            count_alloc_m(AE_ALLOC_SAMPLED, s, size);
            return;
        }
        if (prev != AE_SHADOW_NONE && prev != AE_SHADOW_TABLE) {
            shadow_store(e, AE_SHADOW_NONE);
            count_free(s, prev - 1u);
        }
        /* prev == TABLE: blocks_insert finds the stale entry and counts its free. */
    } else {
        e = NULL;
    }
    record_sampled_slow(a, size, hit, s, e);
}

/* Take `p` out of the records (not yet counted as freed); 1 if it was allocated since start.
 * The shadow is the quick reject: only blocks it marks as in the table take the lock. */
static inline __attribute__((always_inline)) int take_sampled(uintptr_t a, ae_taken_t *out,
                                                              ae_slot_t *s)
{
    uint16_t *e = NULL;
    int found = shadow_find(a, 0, &e);
    if (AE_LIKELY(found == 1)) {
        uint16_t v = shadow_load(e);
        if (AE_LIKELY(v != AE_SHADOW_TABLE)) {
            out->in_table = 0;
            if (v == AE_SHADOW_NONE) {
                count_foreign(s);
                return 0;
            }
            /* Cleared before the real free: once freed, another thread may get the address. */
            shadow_store(e, AE_SHADOW_NONE);
            out->size = v - 1u;
            return 1;
        }
        shadow_store(e, AE_SHADOW_NONE);
    } else if (found == 0) {
        out->in_table = 0;
        count_foreign(s); /* no region here: nothing was recorded around this address */
        return 0;
    }
    return take_locked_table(a, out, s);
}

/* ---- both modes ----
 * Each mode has its own set of hooks (installed by ae_alloc_start), in which that mode's path is
 * inlined and the other mode's path is a call: the hooks stay lean for their mode, and a hook set
 * left installed under another tool's wrapper (see ae_alloc_stop) still works for either mode. */

static inline __attribute__((always_inline)) void record_as(int m, void *p, size_t size)
{
    if (m == AE_ALLOC_SAMPLED)
        record_sampled(p, size, slot_get());
    else
        record_exact(p, size, slot_get());
}

static inline __attribute__((always_inline)) int take_as(int m, void *p, ae_taken_t *out)
{
    if (m == AE_ALLOC_SAMPLED)
        return take_sampled((uintptr_t)p, out, slot_get());
    return take_locked_table((uintptr_t)p, out, slot_get());
}

static __attribute__((noinline)) void record_other(void *p, size_t size)
{
    record_as(mode, p, size);
}

static __attribute__((noinline)) int take_other(void *p, ae_taken_t *out)
{
    return take_as(mode, p, out);
}

#define AE_RECORD(M, p, size)                                                                  \
    (AE_LIKELY(mode == (M)) ? record_as((M), (p), (size)) : record_other((p), (size)))
#define AE_TAKE(M, p, out) (AE_LIKELY(mode == (M)) ? take_as((M), (p), (out)) : take_other((p), (out)))

/* A realloc failed: the old block is still live; put it back as it was (not a new allocation). */
static void put_back(uintptr_t a, const ae_taken_t *t)
{
    int ok = 1;
    if (t->in_table) {
        ae_block_t displaced;
        lock_acquire();
        ok = atomic_load_explicit(&active, memory_order_relaxed) &&
             blocks_insert(&t->b, &displaced) >= 0;
        if (ok)
            table_counted_in(&t->b);
        lock_release();
    }
    uint16_t *e;
    if (mode == AE_ALLOC_SAMPLED && shadow_find(a, 1, &e) == 1)
        shadow_store(e, !ok ? AE_SHADOW_NONE
                            : t->in_table ? AE_SHADOW_TABLE : (uint16_t)(t->size + 1));
}

/* ------------------------------------------------------------------------------------------ */
/* The hooks: one set per domain, each using its own saved allocator (and installed with the
 * original's ctx), so a thread that reads the allocator struct while it is being replaced can
 * only ever pair a function with a ctx that works for it. */

#define AE_ACTIVE() atomic_load_explicit(&active, memory_order_relaxed)

#define AE_DEFINE_HOOKS(D, M, X)                                                               \
    static void *hook_malloc_##D##X(void *ctx, size_t size)                                   \
    {                                                                                          \
        if (in_hook)                                                                           \
            return saved[D].malloc(ctx, size);                                                 \
        in_hook = 1;                                                                           \
        void *p = saved[D].malloc(ctx, size);                                                  \
        if (p != NULL && AE_ACTIVE())                                                          \
            AE_RECORD(M, p, size);                                                             \
        in_hook = 0;                                                                           \
        return p;                                                                              \
    }                                                                                          \
    static void *hook_calloc_##D##X(void *ctx, size_t nelem, size_t elsize)                   \
    {                                                                                          \
        if (in_hook)                                                                           \
            return saved[D].calloc(ctx, nelem, elsize);                                        \
        in_hook = 1;                                                                           \
        void *p = saved[D].calloc(ctx, nelem, elsize);                                         \
        if (p != NULL && AE_ACTIVE())                                                          \
            AE_RECORD(M, p, nelem * elsize);                                                   \
        in_hook = 0;                                                                           \
        return p;                                                                              \
    }                                                                                          \
    static void *hook_realloc_##D##X(void *ctx, void *ptr, size_t size)                       \
    {                                                                                          \
        if (in_hook)                                                                           \
            return saved[D].realloc(ctx, ptr, size);                                           \
        in_hook = 1;                                                                           \
        ae_taken_t old;                                                                        \
        int had = ptr != NULL && AE_ACTIVE() && AE_TAKE(M, ptr, &old);                         \
        void *p = saved[D].realloc(ctx, ptr, size);                                            \
        if (p == NULL) {                                                                       \
            if (had)                                                                           \
                put_back((uintptr_t)ptr, &old);                                                \
        } else {                                                                               \
            if (had)                                                                           \
                count_free(slot_get(), old.size);                                              \
            realloc_from = had ? old.size : 0;                                                 \
            if (AE_ACTIVE())                                                                   \
                AE_RECORD(M, p, size);                                                         \
            realloc_from = 0;                                                                  \
        }                                                                                      \
        in_hook = 0;                                                                           \
        return p;                                                                              \
    }                                                                                          \
    static void hook_free_##D##X(void *ctx, void *ptr)                                        \
    {                                                                                          \
        if (in_hook || ptr == NULL) {                                                          \
            saved[D].free(ctx, ptr);                                                           \
            return;                                                                            \
        }                                                                                      \
        in_hook = 1;                                                                           \
        ae_taken_t old;                                                                        \
        /* Before the real free: once freed, another thread may get the address back. */       \
        if (AE_ACTIVE() && AE_TAKE(M, ptr, &old)) {                                            \
            ae_slot_t *s = slot_get();                                                         \
            if (AE_LIKELY(mode == (M)))                                                        \
                count_free_m((M), s, old.size);                                                \
            else                                                                               \
                count_free(s, old.size);                                                       \
        }                                                                                      \
        saved[D].free(ctx, ptr);                                                               \
        in_hook = 0;                                                                           \
    }

AE_DEFINE_HOOKS(0, AE_ALLOC_EXACT, _exact)
AE_DEFINE_HOOKS(1, AE_ALLOC_EXACT, _exact)
AE_DEFINE_HOOKS(2, AE_ALLOC_EXACT, _exact)
AE_DEFINE_HOOKS(0, AE_ALLOC_SAMPLED, _sampled)
AE_DEFINE_HOOKS(1, AE_ALLOC_SAMPLED, _sampled)
AE_DEFINE_HOOKS(2, AE_ALLOC_SAMPLED, _sampled)

static const PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};

#define AE_HOOK_SET(D, X)                                                                      \
    {NULL, hook_malloc_##D##X, hook_calloc_##D##X, hook_realloc_##D##X, hook_free_##D##X}
static const PyMemAllocatorEx hook_sets[2][3] = {
    {AE_HOOK_SET(0, _exact), AE_HOOK_SET(1, _exact), AE_HOOK_SET(2, _exact)},
    {AE_HOOK_SET(0, _sampled), AE_HOOK_SET(1, _sampled), AE_HOOK_SET(2, _sampled)},
};

static void hooks_for(int m, int d, PyMemAllocatorEx *out)
{
    *out = hook_sets[m][d];
    out->ctx = saved[d].ctx;
}

/* Is `a` one of our hook sets for domain d (either mode)? */
static int ours(int d, const PyMemAllocatorEx *a)
{
    return a->malloc == hook_sets[0][d].malloc || a->malloc == hook_sets[1][d].malloc;
}

/* ------------------------------------------------------------------------------------------ */
/* Native hooks (--native): what C extensions and the libraries they loaded call through their GOT
 * (got.c redirects the slots). They share the reentrancy flag with the PyMem hooks, so a libc call
 * made from inside a hooked PyMem domain is never counted twice, and the records (tables, shadow,
 * slots), so a block malloc'ed by an extension and handed to PyMem_RawFree (or the reverse) is
 * matched. Our own calls to malloc and friends here reach libc: got.c never patches this object.
 * HAZARD: these run in any thread, with or without the GIL, before main() of a library's own
 * threads; the recording path already allows for all of that (see record_exact/walk_here). */

static int native_on;

static __attribute__((noinline)) void native_record(void *p, size_t size)
{
    if (p != NULL && AE_ACTIVE())
        record_other(p, size);
}

static void *native_malloc(size_t size)
{
    if (in_hook)
        return malloc(size);
    in_hook = 1;
    void *p = malloc(size);
    native_record(p, size);
    in_hook = 0;
    return p;
}

static void *native_calloc(size_t nelem, size_t elsize)
{
    if (in_hook)
        return calloc(nelem, elsize);
    in_hook = 1;
    void *p = calloc(nelem, elsize);
    native_record(p, nelem * elsize); /* no overflow: calloc returned a block */
    in_hook = 0;
    return p;
}

static void native_forget(void *ptr)
{
    ae_taken_t old;
    if (ptr != NULL && AE_ACTIVE() && take_other(ptr, &old))
        count_free(slot_get(), old.size);
}

static void native_free(void *ptr)
{
    if (in_hook || ptr == NULL) {
        free(ptr);
        return;
    }
    in_hook = 1;
    native_forget(ptr); /* before the real free: the address may be handed out again */
    free(ptr);
    in_hook = 0;
}

static void *native_realloc(void *ptr, size_t size)
{
    if (in_hook)
        return realloc(ptr, size);
    in_hook = 1;
    void *p;
    if (ptr != NULL && size == 0) { /* glibc frees and returns NULL */
        native_forget(ptr);
        p = realloc(ptr, size);
    } else {
        ae_taken_t old;
        int had = ptr != NULL && AE_ACTIVE() && take_other(ptr, &old);
        p = realloc(ptr, size);
        if (p == NULL) {
            if (had)
                put_back((uintptr_t)ptr, &old);
        } else {
            if (had)
                count_free(slot_get(), old.size);
            realloc_from = had ? old.size : 0;
            native_record(p, size);
            realloc_from = 0;
        }
    }
    in_hook = 0;
    return p;
}

static int native_posix_memalign(void **out, size_t alignment, size_t size)
{
    if (in_hook)
        return posix_memalign(out, alignment, size);
    in_hook = 1;
    int err = posix_memalign(out, alignment, size);
    if (err == 0)
        native_record(*out, size);
    in_hook = 0;
    return err;
}

static void *native_aligned_alloc(size_t alignment, size_t size)
{
    if (in_hook)
        return aligned_alloc(alignment, size);
    in_hook = 1;
    void *p = aligned_alloc(alignment, size);
    native_record(p, size);
    in_hook = 0;
    return p;
}

extern void *memalign(size_t alignment, size_t size);
extern void *valloc(size_t size);

static void *native_memalign(size_t alignment, size_t size)
{
    if (in_hook)
        return memalign(alignment, size);
    in_hook = 1;
    void *p = memalign(alignment, size);
    native_record(p, size);
    in_hook = 0;
    return p;
}

static void *native_valloc(size_t size)
{
    if (in_hook)
        return valloc(size);
    in_hook = 1;
    void *p = valloc(size);
    native_record(p, size);
    in_hook = 0;
    return p;
}

/* Anonymous mappings only: a file mapping is not heap. */
static void *native_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    if (in_hook)
        return mmap(addr, len, prot, flags, fd, offset);
    in_hook = 1;
    void *p = mmap(addr, len, prot, flags, fd, offset);
    if (p != MAP_FAILED && (flags & MAP_ANONYMOUS))
        native_record(p, len);
    in_hook = 0;
    return p;
}

/* A munmap from the start of a tracked mapping frees it (all of it, or its head: the tail stays
 * tracked at its new address). Unmapping the middle or the end of a mapping is not followed. */
static int native_munmap(void *addr, size_t len)
{
    if (in_hook)
        return munmap(addr, len);
    in_hook = 1;
    ae_taken_t old;
    if (AE_ACTIVE() && take_other(addr, &old)) {
        ae_slot_t *s = slot_get();
        if (len >= old.size) {
            count_free(s, old.size);
        } else {
            long page = sysconf(_SC_PAGESIZE);
            size_t cut = (len + (size_t)page - 1) & ~((size_t)page - 1);
            count_free(s, cut);
            count_alloc(s, 0); /* the tail is the same block: keep allocations - frees */
            old.size -= cut;
            old.b.size = old.size;
            old.b.ptr = (uintptr_t)addr + cut;
            put_back(old.b.ptr, &old);
        }
    }
    int r = munmap(addr, len);
    in_hook = 0;
    return r;
}

/* Like realloc for a tracked mapping (an untracked one, e.g. a file mapping, stays untracked). */
static void *native_mremap(void *old, size_t old_size, size_t new_size, int flags, ...)
{
    void *target = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        target = va_arg(ap, void *);
        va_end(ap);
    }
    if (in_hook)
        return mremap(old, old_size, new_size, flags, target);
    in_hook = 1;
    ae_taken_t taken;
    int had = AE_ACTIVE() && take_other(old, &taken);
    void *p = mremap(old, old_size, new_size, flags, target);
    if (had) {
        if (p == MAP_FAILED) {
            put_back((uintptr_t)old, &taken);
        } else {
            count_free(slot_get(), taken.size);
            native_record(p, new_size);
        }
    }
    in_hook = 0;
    return p;
}

static void *native_dlopen(const char *file, int flags)
{
    void *handle = dlopen(file, flags);
    if (handle != NULL && native_on)
        ae_got_patch_new(); /* patch what this load brought in */
    return handle;
}

static const ae_got_hook_t native_full[] = {
    {"malloc", (void *)native_malloc},
    {"calloc", (void *)native_calloc},
    {"realloc", (void *)native_realloc},
    {"free", (void *)native_free},
    {"posix_memalign", (void *)native_posix_memalign},
    {"aligned_alloc", (void *)native_aligned_alloc},
    {"memalign", (void *)native_memalign},
    {"valloc", (void *)native_valloc},
    {"mmap", (void *)native_mmap},
    {"mmap64", (void *)native_mmap},
    {"munmap", (void *)native_munmap},
    {"mremap", (void *)native_mremap},
};
static const ae_got_hook_t native_interp[] = {
    {"dlopen", (void *)native_dlopen},
};

int ae_alloc_native_start(void)
{
    if (!atomic_load(&active))
        return -EINVAL;
    native_on = 1;
    int n = ae_got_patch_all(native_full, sizeof native_full / sizeof native_full[0], native_interp,
                             sizeof native_interp / sizeof native_interp[0]);
    if (n < 0)
        native_on = 0;
    return n;
}

int ae_alloc_native_stop(void)
{
    if (!native_on)
        return 0;
    native_on = 0;
    return ae_got_unpatch_all();
}

void ae_alloc_native_counts(size_t *objects, size_t *slots)
{
    ae_got_counts(objects, slots);
}

/* ------------------------------------------------------------------------------------------ */
/* Fork. */

static void atfork_prepare(void)
{
    lock_acquire(); /* nobody holds it across fork: the child can never inherit it held */
}

static void atfork_parent(void)
{
    lock_release();
}

static void atfork_child(void)
{
    /* Single-threaded now. Recording stops: the child's heap is its own business (its frees of
     * the parent's blocks would otherwise be counted against the parent's session). */
    if (atomic_load_explicit(&active, memory_order_relaxed)) {
        atomic_store(&active, 0);
        totals.stop_ns = now_ns();
        totals.live_blocks = blocks_len;
    }
    cached_tid = 0; /* the TLS of the forking thread: the child has its own tid */
    lock_release();
}

/* The mappings that live as long as the process (see "Teardown" at the top), and the fork
 * handlers. GIL held. 0 or -ENOMEM. */
static int process_setup(void)
{
    static int done;
    if (slots == NULL) {
        slots = map_zeroed(AE_SLOTS * sizeof(ae_slot_t));
        if (slots == NULL)
            return -ENOMEM;
        slots[0].shared = 1;
        slots[0].tid = -1;
    }
    if (!done) {
        if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0)
            return -ENOMEM;
        done = 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Control (GIL held). */

int ae_alloc_running(void)
{
    return atomic_load(&active);
}

int ae_alloc_sampled_shadow(void)
{
    size_t mapped = 0;
    for (size_t r = 0; r < AE_SHADOW_REGIONS; r++) {
        uint16_t *region = __atomic_load_n(&shadow_dir[r], __ATOMIC_ACQUIRE);
        if (region == AE_SHADOW_FAILED)
            return 0;
        mapped += region != NULL;
    }
    return mapped > 0;
}

int ae_alloc_start(int new_mode, uint64_t rate, int depth)
{
    if (atomic_load(&active))
        return -EBUSY;
    if ((new_mode != AE_ALLOC_EXACT && new_mode != AE_ALLOC_SAMPLED) ||
        (new_mode == AE_ALLOC_SAMPLED && rate == 0) || depth < 1)
        return -EINVAL;
    ae_alloc_reset();
    if (process_setup() != 0)
        return -ENOMEM;
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
        PyMemAllocatorEx hooks;
        if (installed[d]) {
            /* Left installed (and inert) by an earlier session because another tool wrapped it:
             * it still wraps saved[d] and serves either mode. If it is on top again, swap in
             * this mode's set. */
            PyMemAllocatorEx current;
            PyMem_GetAllocator(domains[d], &current);
            if (ours(d, &current)) {
                hooks_for(mode, d, &hooks);
                PyMem_SetAllocator(domains[d], &hooks);
            }
            continue;
        }
        PyMem_GetAllocator(domains[d], &saved[d]);
        hooks_for(mode, d, &hooks);
        PyMem_SetAllocator(domains[d], &hooks);
        installed[d] = 1;
    }
    atomic_store(&active, 1);
    return 0;
}

static void uninstall(void)
{
    for (int d = 0; d < 3; d++) {
        PyMemAllocatorEx current;
        PyMem_GetAllocator(domains[d], &current);
        /* Someone wrapped us since (tracemalloc, another tool): removing ourselves would cut
         * them off; stay installed, inert, and keep saved[d] for the next session. */
        if (installed[d] && ours(d, &current)) {
            PyMem_SetAllocator(domains[d], &saved[d]);
            installed[d] = 0;
        }
    }
}

int ae_alloc_stop(void)
{
    if (!atomic_load(&active))
        return -EINVAL;
    lock_acquire();
    if (mode == AE_ALLOC_EXACT && totals.current_bytes > peak_heap)
        peak_capture_locked(); /* the heap at stop is the highest seen since the last capture */
    atomic_store(&active, 0);
    totals.stop_ns = now_ns();
    totals.live_blocks = blocks_len;
    lock_release();
    uninstall();
    return 0;
}

void ae_alloc_after_fork_child(void)
{
    if (!atomic_load(&active))
        uninstall();
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
    ae_peak_row_t *old_peak = peak_rows;
    size_t old_peak_cap = peak_cap;
    blocks = NULL, blocks_cap = blocks_len = 0;
    stacks = NULL, stacks_cap = stacks_len = 0;
    arena = NULL, arena_cap = arena_len = 0;
    stack_index = NULL, stack_index_cap = 0;
    peak_rows = NULL, peak_cap = peak_len = 0;
    peak_heap = peak_at_ns = 0;
    peak_next_auto = AE_PEAK_AUTO_MIN;
    size_t used = atomic_load(&slots_used);
    if (slots != NULL) {
        memset(slots, 0, (used < AE_SLOTS ? used : AE_SLOTS) * sizeof(ae_slot_t));
        slots[0].shared = 1;
        slots[0].tid = -1;
    }
    atomic_store(&slots_used, 1);
    atomic_store(&flushed_current, 0);
    atomic_store(&flushed_peak, 0);
    for (size_t r = 0; mode == AE_ALLOC_SAMPLED && r < AE_SHADOW_REGIONS; r++) {
        uint16_t *region = shadow_dir[r];
        if (region != NULL && region != AE_SHADOW_FAILED) /* zero the pages, give the memory back */
            madvise(region, AE_SHADOW_REGION_BYTES, MADV_DONTNEED);
    }
    lock_release();
    /* Outside the lock: a decref may free a code object, whose free goes through our hooks. */
    for (size_t i = 0; i < old_arena_len; i++)
        Py_DECREF((PyObject *)old_arena[i].code);
    unmap(old_blocks, old_blocks_cap * sizeof(ae_block_t));
    unmap(old_stacks, old_stacks_cap * sizeof(ae_stack_t));
    unmap(old_arena, old_arena_cap * sizeof(ae_frame_t));
    unmap(old_index, old_index_cap * sizeof(uint32_t));
    unmap(old_peak, old_peak_cap * sizeof(ae_peak_row_t));
}

void ae_alloc_stats(ae_alloc_stats_t *out)
{
    lock_acquire();
    *out = totals;
    int running = atomic_load_explicit(&active, memory_order_relaxed);
    size_t live = blocks_len;
    lock_release();
    uint64_t ab = 0, ac = 0, fb = 0, fc = 0, ff = 0;
    size_t used = atomic_load(&slots_used);
    for (size_t i = 0; slots != NULL && i < used && i < AE_SLOTS; i++) {
        ab += __atomic_load_n(&slots[i].allocated_bytes, __ATOMIC_RELAXED);
        ac += __atomic_load_n(&slots[i].allocations, __ATOMIC_RELAXED);
        fb += __atomic_load_n(&slots[i].freed_bytes, __ATOMIC_RELAXED);
        fc += __atomic_load_n(&slots[i].frees, __ATOMIC_RELAXED);
        ff += __atomic_load_n(&slots[i].foreign_frees, __ATOMIC_RELAXED);
    }
    out->allocated_bytes = ab, out->allocations = ac;
    out->freed_bytes = fb, out->frees = fc, out->foreign_frees = ff;
    out->threads = used < AE_SLOTS ? used - 1 : AE_SLOTS - 1;
    if (mode == AE_ALLOC_SAMPLED) {
        out->current_bytes = ab - fb;
        int64_t peak = atomic_load(&flushed_peak);
        out->peak_bytes = peak > 0 && (uint64_t)peak > ab - fb ? (uint64_t)peak : ab - fb;
        out->live_blocks = ac - fc;
    } else if (running) {
        out->live_blocks = live;
    }
}

int ae_alloc_threads(ae_thread_stats_t **out, size_t *count, size_t *capacity)
{
    *out = NULL;
    *count = *capacity = 0;
    size_t used = atomic_load(&slots_used);
    if (slots == NULL || used == 0)
        return 0;
    if (used > AE_SLOTS)
        used = AE_SLOTS;
    ae_thread_stats_t *rows = map_zeroed(used * sizeof(ae_thread_stats_t));
    if (rows == NULL)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < used; i++) {
        ae_slot_t *s = &slots[i];
        ae_thread_stats_t r;
        r.tid = __atomic_load_n(&s->tid, __ATOMIC_RELAXED);
        r.allocated_bytes = __atomic_load_n(&s->allocated_bytes, __ATOMIC_RELAXED);
        r.allocations = __atomic_load_n(&s->allocations, __ATOMIC_RELAXED);
        r.freed_bytes = __atomic_load_n(&s->freed_bytes, __ATOMIC_RELAXED);
        r.frees = __atomic_load_n(&s->frees, __ATOMIC_RELAXED);
        if (r.allocations == 0 && r.frees == 0)
            continue;
        rows[k++] = r;
    }
    *out = rows;
    *count = k;
    *capacity = used;
    return 0;
}

void ae_alloc_threads_free(ae_thread_stats_t *rows, size_t capacity)
{
    unmap(rows, capacity * sizeof(ae_thread_stats_t));
}

int ae_alloc_capture_peak(void)
{
    int captured = 0;
    lock_acquire();
    if (atomic_load_explicit(&active, memory_order_relaxed) && mode == AE_ALLOC_EXACT &&
        totals.current_bytes > peak_heap) {
        peak_capture_locked();
        captured = peak_heap == totals.current_bytes;
    }
    lock_release();
    return captured;
}

int ae_alloc_peak(ae_peak_row_t **out, size_t *count, uint64_t *heap_bytes, uint64_t *at_ns)
{
    *out = NULL;
    *count = 0;
    lock_acquire();
    *heap_bytes = peak_heap;
    *at_ns = peak_at_ns;
    size_t n = 0;
    for (size_t i = 0; i < peak_len; i++)
        if (peak_rows[i].count != 0)
            n++;
    ae_peak_row_t *rows = n ? map_zeroed(n * sizeof(ae_peak_row_t)) : NULL;
    if (n != 0 && rows == NULL) {
        lock_release();
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < peak_len && k < n; i++)
        if (peak_rows[i].count != 0)
            rows[k++] = peak_rows[i];
    lock_release();
    *out = rows;
    *count = k;
    return 0;
}

void ae_alloc_peak_free(ae_peak_row_t *rows, size_t count)
{
    unmap(rows, count * sizeof(ae_peak_row_t));
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

void ae_alloc_debug_hold_lock(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    lock_acquire();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    lock_release();
}
