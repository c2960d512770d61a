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
#include <linux/perf_event.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
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

/* ---- fault guard --------------------------------------------------------------------------
 * The frame chain is read while the interrupted thread may be half-way through linking a frame.
 * On 3.11/3.12, _PyEval_EvalFrameDefault points tstate->cframe at its new C-stack _PyCFrame a few
 * instructions before it stores cframe.current_frame, so for that instant the "current frame" is
 * stale stack contents. Rather than trust it, the walk runs under a guard: a SIGSEGV/SIGBUS while
 * this thread walks jumps back into the handler, which then drops the sample. Any other fault is
 * passed to the handler that was there before us (faulthandler, or the default action). */
static __thread sigjmp_buf *fault_recovery __attribute__((tls_model("initial-exec")));
static struct sigaction previous_segv, previous_bus;
static int fault_guard_installed;

static void fault_handler(int signo, siginfo_t *info, void *ucontext)
{
    sigjmp_buf *recovery = fault_recovery;
    if (recovery != NULL) {
        fault_recovery = NULL;
        siglongjmp(*recovery, 1);
    }
    const struct sigaction *prev = signo == SIGBUS ? &previous_bus : &previous_segv;
    if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction != NULL) {
        prev->sa_sigaction(signo, info, ucontext);
        return;
    }
    if (!(prev->sa_flags & SA_SIGINFO) && prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(signo);
        return;
    }
    /* Reinstate the default action; returning re-executes the faulting instruction, which then
     * dumps core with the original context, exactly as without us. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(signo, &dfl, NULL);
}

int ae_install_fault_guard(void)
{
    if (fault_guard_installed)
        return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = fault_handler;
    /* SA_NODEFER: siglongjmp leaves the handler without sigreturn, so SIGSEGV must not be left
     * blocked. SA_ONSTACK: a genuine stack overflow is handled on faulthandler's altstack. */
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &previous_segv) != 0 || sigaction(SIGBUS, &action, &previous_bus) != 0)
        return -errno;
    fault_guard_installed = 1;
    return 0;
}

/* Was the thread blocked in a system call that our signal interrupted? Then it is not running
 * the code on its stack: in cpu mode the CPU time it used belongs to what ran before it blocked,
 * and in wall mode the sample is idle. x86-64: the kernel either rewound the instruction pointer
 * onto the `syscall` instruction (0f 05) to restart it, or left it just after with -EINTR. */
static int interrupted_blocking_syscall(void *ucontext)
{
#if defined(__x86_64__)
    const ucontext_t *uc = ucontext;
    const uint8_t *ip = (const uint8_t *)uc->uc_mcontext.gregs[REG_RIP];
    long long ax = uc->uc_mcontext.gregs[REG_RAX];
    uintptr_t page_offset = (uintptr_t)ip & 0xFFF;
    if (page_offset <= 0xFFE && ip[0] == 0x0F && ip[1] == 0x05)
        return 1;
    if (page_offset >= 2 && ip[-2] == 0x0F && ip[-1] == 0x05 && ax == -EINTR)
        return 1;
#else
    (void)ucontext;
#endif
    return 0;
}

/* Where a blocked thread waits: the address after its syscall instruction (as
 * /proc/<tid>/syscall shows it) and the first argument. Nonzero if it is a futex on the GIL's
 * condition variable or mutex (see gil.h). */
static int blocked_site(ae_slot_t *slot, void *ucontext)
{
#if defined(__x86_64__)
    const ucontext_t *uc = ucontext;
    const uint8_t *ip = (const uint8_t *)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t pc = (uintptr_t)ip;
    if (((uintptr_t)ip & 0xFFF) <= 0xFFE && ip[0] == 0x0F && ip[1] == 0x05)
        pc += 2; /* rewound for a restart: the kernel reports the address after it */
    uintptr_t arg1 = (uintptr_t)uc->uc_mcontext.gregs[REG_RDI];
    atomic_store_explicit(&slot->blocked_pc, pc, memory_order_relaxed);
    atomic_store_explicit(&slot->blocked_arg, arg1, memory_order_relaxed);
    return ae_state.gil_lo != 0 && arg1 >= ae_state.gil_lo && arg1 < ae_state.gil_hi;
#else
    (void)slot;
    (void)ucontext;
    return 0;
#endif
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

/* Counter-triggered sampling (AE_MODE_TRIGGER): the signal comes from a thread's own perf event
 * overflowing (si_code POLL_HUP/POLL_IN, si_fd its fd; fcntl F_SETSIG/F_SETOWN_EX in counters.c),
 * not from the sampler thread. Sample the stack with the event period as the weight, then re-arm
 * the event for one more overflow (PERF_EVENT_IOC_REFRESH: an ioctl, async-signal-safe). */
/* Record this thread's Python stack as one sample: count the frames, reserve a ring record of
 * that size and walk straight into it (no stack buffer, no copy), then commit it. Runs under the
 * caller's fault guard (fault_recovery set): *rec is published before the walk that may fault, so
 * the caller's recovery path can commit a reserved record as padding; the guard is cleared here
 * once the walks are done. Returns 0, or -1 when the ring was full (nothing recorded; the caller
 * decides what happens to the weight). */
static int record_stack(ae_slot_t *slot, int32_t self, uint64_t when, uint64_t weight, uint8_t flags,
                        ae_record_t *volatile *rec)
{
    int depth = 0, truncated = 0;
    PyThreadState *tstate = ae_this_thread_state();
    if (tstate != NULL && !ae_interpreter_finalizing()) {
        depth = ae_frames_walk(tstate, NULL, ae_state.max_depth, &truncated);
        if (ae_holds_gil(tstate))
            flags |= AE_FLAG_HOLDS_GIL;
    } else {
        tstate = NULL;
        atomic_fetch_add_explicit(&ae_state.no_thread_state, 1, memory_order_relaxed);
    }
    if (truncated)
        flags |= AE_FLAG_TRUNCATED;
    ae_record_t *r = ae_ring_reserve(&ae_state.ring, ae_record_bytes((uint32_t)depth));
    *rec = r;
    if (r == NULL) {
        fault_recovery = NULL;
        return -1;
    }
    if (tstate != NULL)
        depth = ae_frames_walk(tstate, r->frames, depth, &truncated);
    fault_recovery = NULL;
    r->time_ns = when;
    r->weight_ns = weight;
    r->tid = self;
    r->depth = (uint16_t)depth;
    r->flags = flags;
    ae_ring_commit(&ae_state.ring, r, AE_REC_SAMPLE);
    atomic_store_explicit(&slot->has_stack, 1, memory_order_release);
    return 0;
}

static void trigger_sample(const siginfo_t *info)
{
    atomic_fetch_add_explicit(&ae_state.in_flight, 1, memory_order_acq_rel);
    int fd = info->si_fd;
    ae_slot_t *slot = NULL;
    int32_t self = 0;
    if (atomic_load_explicit(&ae_state.active, memory_order_acquire) && ae_state.mode == AE_MODE_TRIGGER && fd >= 0) {
        uint32_t count = atomic_load_explicit(&ae_state.slot_count, memory_order_acquire);
        for (uint32_t i = 0; i < count && i < AE_MAX_THREADS; i++) {
            ae_slot_t *candidate = &ae_state.slots[i];
            int32_t tid = atomic_load_explicit(&candidate->tid, memory_order_acquire);
            if (tid != 0 && atomic_load_explicit(&candidate->trigger_fd, memory_order_acquire) == fd) {
                slot = candidate;
                self = tid;
                break;
            }
        }
    }
    if (slot == NULL) {
        /* After stop(), or an event of a thread that has gone: its fd is closed; drop it. */
        atomic_fetch_add_explicit(&ae_state.stale_signals, 1, memory_order_relaxed);
        goto out;
    }
    uint64_t entered_ns = ae_now_ns();
    uint8_t flags = 0;
    sigjmp_buf recovery;
    ae_record_t *volatile rec = NULL;
    if (sigsetjmp(recovery, 0) == 0) {
        fault_recovery = &recovery;
        /* weight: events, not ns, in this mode */
        if (record_stack(slot, self, entered_ns, ae_state.trigger_period, flags, &rec) != 0) {
            atomic_fetch_add_explicit(&ae_state.lost_weight_ns, ae_state.trigger_period, memory_order_relaxed);
        }
    } else {
        if (rec != NULL)
            ae_ring_commit(&ae_state.ring, rec, AE_REC_PAD);
        atomic_fetch_add_explicit(&ae_state.walk_faults, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&ae_state.signals_sent, 1, memory_order_relaxed);
    /* Re-arm only if the fd is still this thread's event (stop() unpublishes before closing). */
    if (atomic_load_explicit(&slot->trigger_fd, memory_order_acquire) == fd)
        ioctl(fd, PERF_EVENT_IOC_REFRESH, 1);
    atomic_fetch_add_explicit(&ae_state.handler_ns, ae_now_ns() - entered_ns, memory_order_relaxed);
out:
    atomic_fetch_sub_explicit(&ae_state.in_flight, 1, memory_order_acq_rel);
}

void ae_signal_handler(int signo, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    uint64_t cookie = (uint64_t)(uintptr_t)info->si_value.sival_ptr;

    /* Trigger mode's overflow signals: once we have armed perf events on this signal, a POLL_*
     * code on it is ours (nobody else F_SETSIGs our real-time signal), even after stop(). */
    if ((info->si_code == POLL_HUP || info->si_code == POLL_IN) &&
        atomic_load_explicit(&ae_state.trigger_used, memory_order_relaxed)) {
        trigger_sample(info);
        errno = saved_errno;
        return;
    }

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

    /* One clock read serves as the sample's time and as the start of our own cost accounting. */
    uint64_t entered_ns = ae_now_ns();
    uint64_t weight = atomic_exchange_explicit(&slot->pending_weight_ns, 0, memory_order_acq_rel);
    uint8_t flags = AE_COOKIE_FLAGS(cookie);
    sigjmp_buf recovery;
    /* volatile: read after a siglongjmp back here */
    ae_record_t *volatile rec = NULL;
    int blocked = 0;
    if (sigsetjmp(recovery, 0) == 0) {
        fault_recovery = &recovery;
        blocked = interrupted_blocking_syscall(ucontext);
        if (blocked && ae_state.mode == AE_MODE_CPU) {
            /* Not running: hand the CPU time back for the thread's next real sample, and let the
             * sampler leave it alone until it runs again. */
            fault_recovery = NULL;
            atomic_fetch_add_explicit(&slot->pending_weight_ns, weight, memory_order_acq_rel);
            atomic_store_explicit(&slot->parked, 1, memory_order_release);
            atomic_fetch_add_explicit(&ae_state.blocked_skips, 1, memory_order_relaxed);
            goto done;
        }
        if (blocked) {
            flags |= AE_FLAG_IDLE | AE_FLAG_BLOCKED;
            if (blocked_site(slot, ucontext))
                flags |= AE_FLAG_GIL_WAIT;
        } else {
            atomic_store_explicit(&slot->blocked_pc, 0, memory_order_relaxed);
            atomic_store_explicit(&slot->blocked_arg, 0, memory_order_relaxed);
        }
        if (record_stack(slot, self, entered_ns, weight, flags, &rec) != 0) {
            atomic_fetch_add_explicit(&ae_state.lost_weight_ns, weight, memory_order_relaxed);
        }
    } else {
        /* The walk faulted on a half-linked frame (see the fault guard). A reserved record is
         * published as padding, so the consumer skips it; the weight waits for the next sample. */
        if (rec != NULL)
            ae_ring_commit(&ae_state.ring, rec, AE_REC_PAD);
        atomic_fetch_add_explicit(&slot->pending_weight_ns, weight, memory_order_acq_rel);
        atomic_fetch_add_explicit(&ae_state.walk_faults, 1, memory_order_relaxed);
    }
done:
    atomic_store_explicit(&slot->signal_pending, 0, memory_order_release);
    atomic_fetch_add_explicit(&ae_state.handler_ns, ae_now_ns() - entered_ns, memory_order_relaxed);

out:
    atomic_fetch_sub_explicit(&ae_state.in_flight, 1, memory_order_acq_rel);
    errno = saved_errno;
}
