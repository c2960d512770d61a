/* ring.c - see ring.h for the protocol. */
#define _GNU_SOURCE
#include "ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(sizeof(ae_record_t) % 8 == 0, "records must keep 8-byte alignment");
_Static_assert(sizeof(ae_frame_t) == 16, "frame entries are 16 bytes");

int ae_ring_init(ae_ring_t *ring, uint64_t size)
{
    uint64_t p = 1u << 16;
    while (p < size)
        p <<= 1;
    /* MAP_POPULATE pre-faults the pages: a handler touching a fresh page would otherwise take a
     * page fault (tens of microseconds) in the middle of the interrupted thread. */
    void *mem = mmap(NULL, p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    ring->base = mem;
    ring->size = p;
    ring->mask = p - 1;
    atomic_init(&ring->head, 0);
    atomic_init(&ring->tail, 0);
    atomic_init(&ring->written, 0);
    atomic_init(&ring->dropped, 0);
    return 0;
}

void ae_ring_destroy(ae_ring_t *ring)
{
    if (ring->base != NULL)
        munmap(ring->base, ring->size);
    ring->base = NULL;
}

void ae_ring_reset(ae_ring_t *ring)
{
    memset(ring->base, 0, ring->size);
    atomic_store(&ring->head, 0);
    atomic_store(&ring->tail, 0);
    atomic_store(&ring->written, 0);
    atomic_store(&ring->dropped, 0);
}

ae_record_t *ae_ring_reserve(ae_ring_t *ring, uint32_t bytes)
{
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    for (;;) {
        uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
        uint64_t off = head & ring->mask;
        uint64_t pad = (off + bytes > ring->size) ? ring->size - off : 0;
        if (head + pad + bytes - tail > ring->size) {
            atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
            return NULL;
        }
        /* On failure `head` is reloaded with the current value and we retry: lock-free, since a
         * failed CAS means another producer made progress. */
        if (atomic_compare_exchange_weak_explicit(&ring->head, &head, head + pad + bytes,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
            if (pad) {
                ae_record_t *filler = (ae_record_t *)(ring->base + off);
                filler->size = (uint32_t)pad;
                atomic_store_explicit(&filler->state, AE_REC_PAD, memory_order_release);
            }
            ae_record_t *rec = (ae_record_t *)(ring->base + ((head + pad) & ring->mask));
            rec->size = bytes;
            return rec;
        }
    }
}

void ae_ring_commit(ae_ring_t *ring, ae_record_t *rec, uint32_t state)
{
    atomic_store_explicit(&rec->state, state, memory_order_release);
    atomic_fetch_add_explicit(&ring->written, 1, memory_order_relaxed);
}

ae_record_t *ae_ring_peek(ae_ring_t *ring, uint64_t *pos)
{
    for (;;) {
        uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (*pos >= head)
            return NULL;
        ae_record_t *rec = (ae_record_t *)(ring->base + (*pos & ring->mask));
        uint32_t state = atomic_load_explicit(&rec->state, memory_order_acquire);
        if (state == AE_REC_EMPTY)
            return NULL;
        if (state == AE_REC_PAD) {
            *pos += rec->size;
            continue;
        }
        return rec;
    }
}

void ae_ring_release(ae_ring_t *ring, uint64_t upto)
{
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    while (tail < upto) {
        uint64_t off = tail & ring->mask;
        uint64_t chunk = upto - tail;
        if (off + chunk > ring->size)
            chunk = ring->size - off;
        /* Zero before publishing the space: producers rely on fresh space reading EMPTY. */
        memset(ring->base + off, 0, chunk);
        tail += chunk;
    }
    atomic_store_explicit(&ring->tail, tail, memory_order_release);
}
