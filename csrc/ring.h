/* ring.h - a lock-free multi-producer / single-consumer ring of variable-length records.
 *
 * Producers are signal handlers (any thread) and the sampler thread; the consumer is the drain,
 * which always runs with the GIL held. One pre-faulted anonymous mapping holds the records, so a
 * producer never allocates and never page-faults on first touch.
 *
 * Protocol (why each step is there):
 *  - A producer reserves bytes by CAS on `head` after checking that `head + need - tail <= size`;
 *    a record that would straddle the end is preceded by a PAD record filling the tail end, so
 *    every record is contiguous and the consumer never copies.
 *  - The reserved area is all zero (the consumer zeroes what it consumed), so its `state` word is
 *    EMPTY until the producer publishes it with a release store: the consumer can never see a
 *    half-written record, nor stale bytes of an older lap.
 *  - The consumer stops at the first EMPTY record; it is picked up by the next drain.
 *  - No slot free -> the producer drops the record and counts the drop. Nobody ever waits.
 */
#ifndef AETHER_RING_H
#define AETHER_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum ae_record_state {
    AE_REC_EMPTY = 0,   /* reserved but not yet published, or free space */
    AE_REC_SAMPLE = 1,  /* a stack captured by the signal handler */
    AE_REC_IDLE = 2,    /* wall mode: thread did not run; repeat its previous stack */
    AE_REC_PAD = 3,     /* filler up to the end of the mapping */
};

/* Flags stored with each sample; the same bit values as aether_perf.model FLAG_*. */
enum ae_sample_flags {
    AE_FLAG_HOLDS_GIL = 1,
    AE_FLAG_IDLE = 2,
    AE_FLAG_TRUNCATED = 4,
    AE_FLAG_GIL_WAIT = 8, /* wall mode: blocked waiting for the GIL (see gil.h) */
    AE_FLAG_BLOCKED = 16, /* wall mode: found blocked in a system call (IDLE may also mean "did not run") */
};

/* One captured Python frame. `code` is a PyCodeObject* (8-byte aligned, so bit 0 is clear) and
 * `lasti` the instruction offset in code units. When the code-death hook resolves an entry ahead
 * of the drain, it rewrites it in place as a tombstone: `code = (index << 1) | 1` (see codehook.h)
 * and `lasti` becomes the already-resolved line number. */
typedef struct {
    uintptr_t code;
    int32_t lasti;
    int32_t reserved;
} ae_frame_t;

#define AE_FRAME_IS_TOMBSTONE(code) (((code) & 1u) != 0)
#define AE_TOMBSTONE_INDEX(code) ((code) >> 1)

typedef struct {
    _Atomic uint32_t state;  /* enum ae_record_state; written last, with release order */
    uint32_t size;           /* whole record in bytes, a multiple of 8 */
    uint64_t time_ns;        /* CLOCK_MONOTONIC */
    uint64_t weight_ns;      /* CPU (cpu mode) or wall (wall mode) time this sample stands for */
    int32_t tid;             /* kernel thread id */
    uint16_t depth;          /* number of frames that follow, innermost first */
    uint8_t flags;           /* enum ae_sample_flags */
    uint8_t reserved;
    ae_frame_t frames[];
} ae_record_t;

typedef struct {
    uint8_t *base;
    uint64_t size; /* power of two */
    uint64_t mask;
    _Atomic uint64_t head;      /* next byte to reserve (monotonic, never wraps in practice) */
    _Atomic uint64_t tail;      /* next byte to consume; written by the consumer only */
    _Atomic uint64_t written;   /* records published */
    _Atomic uint64_t dropped;   /* records refused for lack of space */
} ae_ring_t;

/* Map and pre-fault `size` bytes (rounded up to a power of two). Not signal-safe. 0 or -errno. */
int ae_ring_init(ae_ring_t *ring, uint64_t size);
void ae_ring_destroy(ae_ring_t *ring);
/* Forget every record and zero the mapping; only while no producer can run. */
void ae_ring_reset(ae_ring_t *ring);

/* Async-signal-safe: reserve `bytes` (multiple of 8, >= sizeof(ae_record_t)). NULL when full. */
ae_record_t *ae_ring_reserve(ae_ring_t *ring, uint32_t bytes);
/* Async-signal-safe: publish a reserved record as `state`. */
void ae_ring_commit(ae_ring_t *ring, ae_record_t *rec, uint32_t state);

/* Consumer side. `ae_ring_peek` returns the published record at byte position `pos` (skipping
 * PAD records, advancing *pos past them) or NULL when the next record is not published yet or
 * pos reached head. `ae_ring_release` zeroes [tail, upto) and advances tail to `upto`. */
ae_record_t *ae_ring_peek(ae_ring_t *ring, uint64_t *pos);
void ae_ring_release(ae_ring_t *ring, uint64_t upto);

/* Plain accessors for the Cython binding, which cannot declare _Atomic fields. */
static inline uint32_t ae_record_state(ae_record_t *rec)
{
    return atomic_load_explicit(&rec->state, memory_order_acquire);
}

static inline uint64_t ae_ring_tail(ae_ring_t *ring)
{
    return atomic_load_explicit(&ring->tail, memory_order_acquire);
}

static inline uint32_t ae_record_bytes(uint32_t depth)
{
    return (uint32_t)(sizeof(ae_record_t) + (size_t)depth * sizeof(ae_frame_t));
}

#endif
