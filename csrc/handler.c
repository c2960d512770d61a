/* handler.c - the sampling signal handler.
 *
 * Runs on the interrupted thread, at any instruction. Rules (DESIGN.md "Handler rules"): no
 * malloc, no locks, no reference counting, no Python API other than plain reads; errno saved and
 * restored; when the ring has no room the sample is dropped and counted. Signals that are not
 * ours (another sender, or another handler's user) are passed on to whatever handler we replaced.
 */
#define _GNU_SOURCE
#include <Python.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "frames.h"
#include "state.h"

uint64_t ae_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int ae_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

/* Give a signal that is not ours to the handler that was installed before us, as if we were not
 * there. For SIG_DFL we reinstate the default and re-raise: the signal is blocked while we run,
 * so it is delivered (and takes its default action) as soon as we return. */
static void chain_previous(int signo, siginfo_t *info, void *ucontext)
{
    const struct sigaction *prev = &ae_state.previous;
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction != NULL)
            prev->sa_sigaction(signo, info, ucontext);
    } else if (prev->sa_handler == SIG_IGN) {
        /* ignored before we came: keep ignoring */
    } else if (prev->sa_handler == SIG_DFL) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(signo, &dfl, NULL);
        raise(signo);
    } else {
        prev->sa_handler(signo);
    }
}

void ae_signal_handler(int signo, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    uint64_t cookie = (uint64_t)(uintptr_t)info->si_value.sival_ptr;

    if (info->si_code != SI_QUEUE || info->si_pid != ae_state.pid || !AE_COOKIE_IS_OURS(cookie)) {
        atomic_fetch_add_explicit(&ae_state.foreign_signals, 1, memory_order_relaxed);
        chain_previous(signo, info, ucontext);
        errno = saved_errno;
        return;
    }

    /* Counted before checking `active`, so ae_sampler_stop() can wait until no handler is past
     * that check (it clears `active`, then waits for in_flight to drain). */
    atomic_fetch_add_explicit(&ae_state.in_flight, 1, memory_order_acq_rel);
    uint32_t index = AE_COOKIE_INDEX(cookie);
    if (!atomic_load_explicit(&ae_state.active, memory_order_acquire) ||
        AE_COOKIE_GEN(cookie) != (atomic_load_explicit(&ae_state.generation, memory_order_relaxed) & 0xFFFF) ||
        index >= AE_MAX_THREADS) {
        atomic_fetch_add_explicit(&ae_state.stale_signals, 1, memory_order_relaxed);
        goto out;
    }

    ae_slot_t *slot = &ae_state.slots[index];
    int32_t self = atomic_load_explicit(&slot->tid, memory_order_acquire);
    uint32_t serial = atomic_load_explicit(&slot->serial, memory_order_acquire) & 0xFFF;
    if (self == 0 || serial != AE_COOKIE_SERIAL(cookie)) {
        /* The slot was freed or given to another thread while this signal was queued. */
        atomic_fetch_add_explicit(&ae_state.stale_signals, 1, memory_order_relaxed);
        goto out;
    }

    uint64_t weight = atomic_exchange_explicit(&slot->pending_weight_ns, 0, memory_order_acq_rel);
    uint8_t flags = AE_COOKIE_FLAGS(cookie);
    int depth = 0;
    int truncated = 0;
    PyThreadState *tstate = ae_this_thread_state();
    if (tstate != NULL && !ae_interpreter_finalizing()) {
        /* Count, then walk straight into the reserved record: no stack buffer, no copy. */
        depth = ae_frames_walk(tstate, NULL, ae_state.max_depth, &truncated);
        if (ae_holds_gil(tstate))
            flags |= AE_FLAG_HOLDS_GIL;
    } else {
        tstate = NULL;
        atomic_fetch_add_explicit(&ae_state.no_thread_state, 1, memory_order_relaxed);
    }
    if (truncated)
        flags |= AE_FLAG_TRUNCATED;

    ae_record_t *rec = ae_ring_reserve(&ae_state.ring, ae_record_bytes((uint32_t)depth));
    if (rec != NULL) {
        if (tstate != NULL)
            depth = ae_frames_walk(tstate, rec->frames, depth, &truncated);
        rec->time_ns = ae_now_ns();
        rec->weight_ns = weight;
        rec->tid = self;
        rec->depth = (uint16_t)depth;
        rec->flags = flags;
        ae_ring_commit(&ae_state.ring, rec, AE_REC_SAMPLE);
        atomic_store_explicit(&slot->has_stack, 1, memory_order_release);
    } else {
        atomic_fetch_add_explicit(&ae_state.lost_weight_ns, weight, memory_order_relaxed);
    }
    atomic_store_explicit(&slot->signal_pending, 0, memory_order_release);

out:
    atomic_fetch_sub_explicit(&ae_state.in_flight, 1, memory_order_acq_rel);
    errno = saved_errno;
}
