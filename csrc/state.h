/* state.h - the sampler's process-wide state, shared by handler.c, sampler.c and codehook.c.
 *
 * Ownership: the sampler thread alone allocates and frees thread slots and writes the
 * "sampler private" fields; the signal handler on a thread touches only that thread's slot
 * through atomics; the drain (GIL held) reads the ring and the counters.
 */
#ifndef AETHER_STATE_H
#define AETHER_STATE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"

#define AE_MAX_THREADS 1024
#define AE_MAX_EXCLUDED 16
#define AE_MAX_DEPTH 4096

/* What the sampler passes to the handler in si_value (rt_tgsigqueueinfo): a magic tag so the
 * handler can tell our signals from anyone else's, the session generation so a signal still
 * queued after stop() is ignored, per-sample flags, the thread's slot index, and the slot's
 * serial so a signal queued for a thread whose slot was since given to another thread is
 * recognised without a gettid() system call in the handler. */
#define AE_COOKIE_MAGIC 0xAE71ull
#define AE_COOKIE(gen, flags, serial, idx) \
    ((AE_COOKIE_MAGIC << 48) | ((uint64_t)((gen) & 0xFFFF) << 32) | ((uint64_t)((flags) & 0xFF) << 24) | \
     ((uint64_t)((serial) & 0xFFF) << 12) | ((uint64_t)(idx) & 0xFFF))
#define AE_COOKIE_IS_OURS(c) (((uint64_t)(c) >> 48) == AE_COOKIE_MAGIC)
#define AE_COOKIE_GEN(c) ((uint32_t)(((uint64_t)(c) >> 32) & 0xFFFF))
#define AE_COOKIE_FLAGS(c) ((uint8_t)(((uint64_t)(c) >> 24) & 0xFF))
#define AE_COOKIE_SERIAL(c) ((uint32_t)(((uint64_t)(c) >> 12) & 0xFFF))
#define AE_COOKIE_INDEX(c) ((uint32_t)((uint64_t)(c) & 0xFFF))
_Static_assert(AE_MAX_THREADS <= 0xFFF + 1, "slot indices must fit the cookie");

/* AE_MODE_TRIGGER (counter-triggered sampling): no ticks; each thread has a perf_event that
 * signals it every `trigger_period` events and the handler samples on that signal. */
enum ae_mode { AE_MODE_CPU = 0, AE_MODE_WALL = 1, AE_MODE_TRIGGER = 2 };

typedef struct {
    /* shared with the handler */
    _Atomic int32_t tid;                /* 0 = free slot */
    _Atomic uint64_t pending_weight_ns; /* added by the sampler, taken by the handler */
    _Atomic uint32_t signal_pending;    /* set before sending, cleared by the handler */
    _Atomic uint32_t serial;            /* bumped each time the slot is given to a thread */
    _Atomic uint32_t has_stack;         /* a stack of this thread is in the ring this session */
    _Atomic uint32_t parked;            /* cpu mode: signalled while blocked; wait until it runs */
    _Atomic uintptr_t blocked_pc;       /* wall mode: where its last sample was blocked (the address */
    _Atomic uintptr_t blocked_arg;      /* after the syscall instruction) and on what (rdi); 0, 0 */
    /* sampler-thread private */
    uint64_t last_cpu_ns;
    uint64_t last_wall_ns;
    uint32_t seen_scan;
    int sched_fd;          /* wall mode: /proc/self/task/<tid>/schedstat, or -1 */
    int syscall_fd;        /* wall mode: /proc/self/task/<tid>/syscall, or -1 */
    uint64_t last_pcount;  /* times the thread was scheduled in, at the last look */
    int rebaseline;        /* we signalled it: its next wake-up count is ours, not its own */
    _Atomic int trigger_fd; /* trigger mode: the thread's overflow-signalling perf_event, or -1 */
    int echo_pending;      /* we signalled it and it has not yet been seen back in a wait */
    int echo_gil;          /* ... and since then it was seen queueing for the GIL */
    uint8_t idle_flags;    /* what /proc/<tid>/syscall said at the last look (blocked_on) */
    int idle_flags_valid;  /* ... still true: it has not been scheduled since */
} ae_slot_t;

typedef struct {
    ae_ring_t ring;
    ae_slot_t slots[AE_MAX_THREADS];
    uint32_t slot_hwm; /* slots[0..slot_hwm) may be in use; sampler thread only */

    _Atomic int active;         /* handlers may record */
    _Atomic uint32_t generation;
    _Atomic int in_flight;      /* handlers currently running our code path */
    _Atomic int paused;         /* fork in progress: the sampler thread sends nothing */
    _Atomic int stop_requested;
    int running;                /* between ae_sampler_start and ae_sampler_stop */

    int signo;
    int mode;
    int max_depth;
    uint64_t interval_ns;
    uint64_t start_ns;
    uintptr_t gil_lo, gil_hi;   /* the GIL struct (gil.h); 0, 0 when unknown */
    pid_t pid;

    struct sigaction previous;  /* handler we replaced, chained for signals that are not ours */
    int handler_installed;

    pthread_t thread;
    _Atomic int32_t sampler_tid;
    _Atomic int32_t excluded[AE_MAX_EXCLUDED];

    /* counters, read by the drain */
    _Atomic uint64_t ticks;
    _Atomic uint64_t late_ticks;
    _Atomic uint64_t signals_sent;
    _Atomic uint64_t signals_failed;
    _Atomic uint64_t idle_records;
    _Atomic uint64_t foreign_signals;
    _Atomic uint64_t stale_signals;
    _Atomic uint64_t no_thread_state;
    _Atomic uint64_t lost_weight_ns;
    _Atomic uint64_t blocked_skips;
    _Atomic uint64_t walk_faults;
    _Atomic uint64_t wakeups_seen;
    _Atomic uint64_t handler_ns; /* time spent in our handler (after the is-it-ours check) */
    _Atomic uint64_t threads_seen;
    _Atomic uint64_t threads_untracked;

    /* trigger mode (csrc/counters.c opens the events) */
    uint32_t trigger_type;
    uint64_t trigger_config;
    uint64_t trigger_period;
    int trigger_user_only;
    _Atomic int trigger_used;            /* ever armed: POLL_* signals on our signo are ours */
    _Atomic uint64_t trigger_open_failed; /* threads whose event could not be opened */
    _Atomic uint32_t slot_count;         /* slot_hwm, published for the trigger handler's lookup */
} ae_state_t;

extern ae_state_t ae_state;

void ae_signal_handler(int signo, siginfo_t *info, void *ucontext);
int ae_install_fault_guard(void);
uint64_t ae_now_ns(void);
int ae_gettid(void);

#endif
