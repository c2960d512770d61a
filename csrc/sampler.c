/* sampler.c - the sampler thread: who gets a signal, when, and with what weight.
 *
 * CPU timers tick at the kernel's HZ (250 Hz here), so they cannot drive 1 kHz sampling. Instead
 * one thread sleeps to absolute deadlines (clock_nanosleep TIMER_ABSTIME, hrtimer-backed) and on
 * every tick reads each thread's CPU clock:
 *   cpu mode:  a thread that ran since its last sample is signalled; the CPU time it used is
 *              added to its pending weight, which the handler takes, so summed weights equal the
 *              threads' CPU time whatever the achieved rate;
 *   wall mode: every thread gets the wall time since its last sample; a thread that ran is
 *              signalled, one that did not is not woken - the sampler writes an IDLE record and
 *              the drain repeats that thread's previous stack (it cannot have changed without CPU).
 * Threads are found by scanning /proc/self/task every few milliseconds, so threads started after
 * start() are sampled too and exited ones are forgotten.
 */
#define _GNU_SOURCE
#include "sampler.h"
#include "gil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "counters.h"
#include "state.h"

ae_state_t ae_state;

/* How often /proc/self/task is re-read: new threads wait at most this long for their first
 * sample, but their CPU time from birth is still counted (their baseline is zero). */
#define AE_SCAN_PERIOD_NS 10000000ull
/* CPU a thread may use between two ticks without counting as "ran": signal delivery, our
 * handler and the sigreturn cost it 5-15us (measured on a 2-vCPU VM), so an idle thread we just
 * sampled shows that much; below this, signalling it again would only sample our own footprint.
 * (Reading the thread CPU clock at the end of the handler would measure it exactly, but costs a
 * system call in every sample.) Capped at a quarter of the interval for fast rates. */
#define AE_HANDLER_SLACK_NS 20000ull

static uint64_t rng_state;

static uint64_t next_random(void)
{
    /* xorshift64*: cheap, good enough to decorrelate ticks from periodic program behaviour. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

uint64_t ae_clock_ns(void)
{
    return ae_now_ns();
}

int ae_current_tid(void)
{
    return ae_gettid();
}

/* The CPU clock of any thread of this process, by kernel tid: MAKE_THREAD_CPUCLOCK(tid,
 * CPUCLOCK_SCHED) from the kernel's posix-timers.h. Unlike pthread_getcpuclockid it needs no
 * pthread_t, so it works for threads we did not create and fails cleanly (EINVAL) once the
 * thread is gone. */
static int thread_cpu_ns(int tid, uint64_t *out)
{
    clockid_t clock = (clockid_t)((~(unsigned int)tid) << 3) | 6;
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return -1;
    *out = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return 0;
}

static int is_excluded(int tid)
{
    if (tid == atomic_load(&ae_state.sampler_tid))
        return 1;
    for (int i = 0; i < AE_MAX_EXCLUDED; i++)
        if (atomic_load(&ae_state.excluded[i]) == tid)
            return 1;
    return 0;
}

/* Trigger mode: unpublish the thread's overflow event before closing it, so the handler never
 * re-arms an fd number that may already belong to something else. */
static void close_trigger(ae_slot_t *slot)
{
    int fd = atomic_exchange(&slot->trigger_fd, -1);
    if (fd >= 0)
        close(fd);
}

static void free_slot(ae_slot_t *slot)
{
    atomic_fetch_add(&ae_state.lost_weight_ns, atomic_exchange(&slot->pending_weight_ns, 0));
    if (slot->sched_fd >= 0)
        close(slot->sched_fd);
    slot->sched_fd = -1;
    close_trigger(slot);
    if (slot->syscall_fd >= 0)
        close(slot->syscall_fd);
    slot->sched_fd = slot->syscall_fd = -1;
    atomic_store(&slot->tid, 0);
}

/* How many times the thread has been scheduled in (third field of schedstat): it changes on
 * every wake-up, however brief, where its CPU clock may move by only a few microseconds. */
static int read_pcount(ae_slot_t *slot, uint64_t *out)
{
    char buf[96];
    ssize_t n = pread(slot->sched_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = buf;
    for (int field = 0; field < 2; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        p++;
    }
    *out = strtoull(p, NULL, 10);
    return 0;
}

/* What a thread that did not run is blocked on, without waking it (a signal would: an
 * interrupted sleep takes the GIL back before sleeping again). /proc/self/task/<tid>/syscall
 * reads "running" or "<nr> <arg1> ...": a futex (202 on x86-64) whose address (arg1) lies in the
 * GIL's struct is a wait for the GIL (see gil.h). Returns AE_FLAG_BLOCKED [| AE_FLAG_GIL_WAIT],
 * or 0 when running (runnable: waiting for a CPU) or unknown. */
static uint8_t blocked_on(ae_slot_t *slot, uintptr_t *pc, uintptr_t *arg1)
{
    char buf[192];
    *pc = *arg1 = 0;
    if (slot->syscall_fd < 0)
        return 0;
    ssize_t n = pread(slot->syscall_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    if (buf[0] < '0' || buf[0] > '9')
        return 0; /* "running" */
    char *p;
    long nr = strtol(buf, &p, 10);
    if (nr < 0)
        return 0;
    /* nr arg1..arg6 sp pc */
    uintptr_t values[8];
    for (int i = 0; i < 8; i++) {
        char *next;
        values[i] = (uintptr_t)strtoull(p, &next, 16);
        if (next == p)
            return AE_FLAG_BLOCKED;
        p = next;
    }
    *arg1 = values[0];
    *pc = values[7];
    uint8_t flags = AE_FLAG_BLOCKED;
#if defined(__x86_64__)
    if (nr == 202 && ae_state.gil_lo != 0 && *arg1 >= ae_state.gil_lo && *arg1 < ae_state.gil_hi)
        flags |= AE_FLAG_GIL_WAIT;
#endif
    return flags;
}

static void open_schedstat(ae_slot_t *slot, int tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    slot->sched_fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    slot->syscall_fd = open(path, O_RDONLY | O_CLOEXEC);
    slot->rebaseline = 1;
    slot->echo_pending = slot->echo_gil = 0;
    slot->idle_flags = 0;
    slot->idle_flags_valid = 0;
}

static ae_slot_t *find_slot(int tid)
{
    for (uint32_t i = 0; i < ae_state.slot_hwm; i++)
        if (atomic_load_explicit(&ae_state.slots[i].tid, memory_order_relaxed) == tid)
            return &ae_state.slots[i];
    return NULL;
}

static ae_slot_t *new_slot(int tid, uint64_t now, int born_after_start)
{
    ae_slot_t *slot = NULL;
    for (uint32_t i = 0; i < ae_state.slot_hwm; i++) {
        if (atomic_load_explicit(&ae_state.slots[i].tid, memory_order_relaxed) == 0) {
            slot = &ae_state.slots[i];
            break;
        }
    }
    if (slot == NULL) {
        if (ae_state.slot_hwm >= AE_MAX_THREADS) {
            atomic_fetch_add(&ae_state.threads_untracked, 1);
            return NULL;
        }
        slot = &ae_state.slots[ae_state.slot_hwm++];
        atomic_store(&ae_state.slot_count, ae_state.slot_hwm);
    }
    uint64_t cpu = 0;
    if (thread_cpu_ns(tid, &cpu) != 0)
        return NULL;
    /* A thread that existed at start() counts from its CPU clock then; one born later counts
     * from zero, i.e. from its birth, so short-lived threads are not under-weighted. */
    slot->last_cpu_ns = born_after_start ? 0 : cpu;
    slot->last_wall_ns = born_after_start ? now - ae_state.interval_ns : now;
    atomic_store(&slot->pending_weight_ns, 0);
    atomic_store(&slot->signal_pending, 0);
    atomic_fetch_add(&slot->serial, 1);
    atomic_store(&slot->has_stack, 0);
    atomic_store(&slot->parked, 0);
    atomic_store(&slot->blocked_pc, 0);
    atomic_store(&slot->blocked_arg, 0);
    slot->sched_fd = slot->syscall_fd = -1;
    if (ae_state.mode == AE_MODE_WALL)
        open_schedstat(slot, tid);
    atomic_store(&slot->trigger_fd, -1);
    atomic_store_explicit(&slot->tid, tid, memory_order_release);
    if (ae_state.mode == AE_MODE_TRIGGER) {
        /* Published after tid, so the handler finds a complete slot behind every fd it sees. */
        int fd = ae_ctr_open_trigger(tid, ae_state.trigger_type, ae_state.trigger_config, ae_state.trigger_period,
                                     ae_state.signo, ae_state.trigger_user_only);
        if (fd >= 0)
            atomic_store_explicit(&slot->trigger_fd, fd, memory_order_release);
        else
            atomic_fetch_add(&ae_state.trigger_open_failed, 1);
    }
    atomic_fetch_add(&ae_state.threads_seen, 1);
    return slot;
}

static void scan_threads(uint64_t now, uint32_t scan, int initial)
{
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        int tid = atoi(entry->d_name);
        ae_slot_t *slot = find_slot(tid);
        if (is_excluded(tid)) {
            if (slot != NULL)
                free_slot(slot);
            continue;
        }
        if (slot == NULL)
            slot = new_slot(tid, now, !initial);
        if (slot != NULL)
            slot->seen_scan = scan;
    }
    closedir(dir);
    for (uint32_t i = 0; i < ae_state.slot_hwm; i++) {
        ae_slot_t *slot = &ae_state.slots[i];
        if (atomic_load(&slot->tid) != 0 && slot->seen_scan != scan)
            free_slot(slot);
    }
}

static void send_signal(ae_slot_t *slot, uint32_t index, uint8_t flags)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = ae_state.signo;
    info.si_code = SI_QUEUE;
    info.si_pid = ae_state.pid;
    info.si_uid = getuid();
    uint32_t gen = atomic_load(&ae_state.generation);
    uint32_t serial = atomic_load(&slot->serial);
    info.si_value.sival_ptr = (void *)(uintptr_t)AE_COOKIE(gen, flags, serial, index);
    atomic_store_explicit(&slot->signal_pending, 1, memory_order_release);
    /* rt_tgsigqueueinfo rather than tgkill: the same targeted delivery, plus an si_value that
     * carries the slot index and session, and an si_code (SI_QUEUE) nobody else's timer uses. */
    if (syscall(SYS_rt_tgsigqueueinfo, ae_state.pid, atomic_load(&slot->tid), ae_state.signo, &info) != 0) {
        atomic_store(&slot->signal_pending, 0);
        atomic_fetch_add(&ae_state.signals_failed, 1);
        if (errno == ESRCH)
            free_slot(slot);
        return;
    }
    atomic_fetch_add_explicit(&ae_state.signals_sent, 1, memory_order_relaxed);
}

static void write_idle_record(ae_slot_t *slot, uint64_t now, uint8_t blocked)
{
    ae_record_t *rec = ae_ring_reserve(&ae_state.ring, ae_record_bytes(0));
    uint64_t weight = atomic_exchange(&slot->pending_weight_ns, 0);
    if (rec == NULL) {
        atomic_fetch_add(&ae_state.lost_weight_ns, weight);
        return;
    }
    rec->time_ns = now;
    rec->weight_ns = weight;
    rec->tid = atomic_load(&slot->tid);
    rec->depth = 0;
    rec->flags = AE_FLAG_IDLE | blocked;
    ae_ring_commit(&ae_state.ring, rec, AE_REC_IDLE);
    atomic_fetch_add_explicit(&ae_state.idle_records, 1, memory_order_relaxed);
}

static void tick(uint64_t now)
{
    if (ae_state.mode == AE_MODE_TRIGGER)
        return; /* the threads' perf events send the signals; this thread only finds threads */
    uint64_t slack = ae_state.interval_ns / 4 < AE_HANDLER_SLACK_NS ? ae_state.interval_ns / 4 : AE_HANDLER_SLACK_NS;
    for (uint32_t i = 0; i < ae_state.slot_hwm; i++) {
        ae_slot_t *slot = &ae_state.slots[i];
        int tid = atomic_load_explicit(&slot->tid, memory_order_relaxed);
        if (tid == 0)
            continue;
        uint64_t cpu;
        if (thread_cpu_ns(tid, &cpu) != 0) {
            free_slot(slot); /* exited since the last scan */
            continue;
        }
        if (cpu < slot->last_cpu_ns) /* the tid was reused by a new thread */
            slot->last_cpu_ns = 0;
        uint64_t cpu_delta = cpu - slot->last_cpu_ns;
        int ran = cpu_delta > slack;
        uint64_t wall_delta = now - slot->last_wall_ns;
        slot->last_cpu_ns = cpu;
        slot->last_wall_ns = now;
        int pending = atomic_load_explicit(&slot->signal_pending, memory_order_acquire);

        if (ae_state.mode == AE_MODE_CPU) {
            uint64_t weight = atomic_fetch_add(&slot->pending_weight_ns, cpu_delta) + cpu_delta;
            if (ran)
                atomic_store(&slot->parked, 0);
            /* Sub-slack slivers accumulate until they are worth a sample of their own; a thread
             * found blocked (parked) is not woken again for them. */
            if (!pending && (ran || (weight >= ae_state.interval_ns && !atomic_load(&slot->parked))))
                send_signal(slot, i, 0);
        } else {
            atomic_fetch_add(&slot->pending_weight_ns, wall_delta);
            if (pending)
                continue; /* its handler has not run yet: the weight rides on that sample */
            uint8_t blocked = 0;
            int looked = 0;
            uintptr_t pc = 0, arg1 = 0;
            if (ran && slot->echo_gil && slot->sched_fd >= 0) {
                /* Sent by our signal to queue for the GIL, it got it and is back in the wait we
                 * interrupted: what it ran was the C retry loop (PEP 475), not Python code. */
                blocked = blocked_on(slot, &pc, &arg1);
                looked = 1;
                if (blocked && !(blocked & AE_FLAG_GIL_WAIT) &&
                    pc == atomic_load_explicit(&slot->blocked_pc, memory_order_relaxed) &&
                    arg1 == atomic_load_explicit(&slot->blocked_arg, memory_order_relaxed)) {
                    ran = 0;
                    slot->echo_pending = slot->echo_gil = 0;
                    uint64_t pcount;
                    if (read_pcount(slot, &pcount) == 0)
                        slot->last_pcount = pcount;
                }
            } else if (!ran && slot->sched_fd >= 0) {
                /* A wake-up too short to show on the CPU clock still moved the thread to another
                 * place; the schedule count sees it. Our own signal wakes it once: not counted.
                 * Two more wake-ups are not signalled, because a signal would interrupt a wait
                 * and an interrupted sleep takes the GIL back before sleeping again:
                 *  - one after which the thread waits for the GIL: it cannot have run Python code;
                 *  - the return to the very wait (same system call site and first argument) its
                 *    last sample found, after our signal sent it to queue for the GIL: without
                 *    this, under GIL contention every signal would cause the next. */
                uint64_t pcount;
                if (read_pcount(slot, &pcount) == 0) {
                    int woke = !slot->rebaseline && pcount != slot->last_pcount;
                    if (woke || slot->echo_pending) {
                        blocked = blocked_on(slot, &pc, &arg1);
                        looked = 1;
                        if (slot->echo_pending && (blocked & AE_FLAG_GIL_WAIT))
                            slot->echo_gil = 1;
                        else if (slot->echo_pending && blocked && !slot->echo_gil && !woke)
                            slot->echo_pending = 0; /* back in a wait without queueing for the GIL */
                    }
                    if (woke && !(blocked & AE_FLAG_GIL_WAIT)) {
                        int same_wait = blocked &&
                                        pc == atomic_load_explicit(&slot->blocked_pc, memory_order_relaxed) &&
                                        arg1 == atomic_load_explicit(&slot->blocked_arg, memory_order_relaxed);
                        if (same_wait && slot->echo_gil) {
                            slot->echo_pending = slot->echo_gil = 0;
                        } else {
                            ran = 1;
                            atomic_fetch_add_explicit(&ae_state.wakeups_seen, 1, memory_order_relaxed);
                        }
                    }
                    slot->last_pcount = pcount;
                    slot->rebaseline = 0;
                }
            }
            if (looked) {
                slot->idle_flags = blocked;
                slot->idle_flags_valid = 1;
            }
            if (ran || !atomic_load_explicit(&slot->has_stack, memory_order_acquire)) {
                send_signal(slot, i, ran ? 0 : AE_FLAG_IDLE);
                slot->rebaseline = 1;
                slot->echo_pending = 1;
                slot->echo_gil = 0;
                slot->idle_flags_valid = 0;
            } else {
                /* Not scheduled since the last look (same schedule count): still in that wait. */
                if (!looked && !slot->idle_flags_valid) {
                    slot->idle_flags = blocked_on(slot, &pc, &arg1);
                    slot->idle_flags_valid = 1;
                }
                write_idle_record(slot, now, slot->idle_flags);
            }
        }
    }
}

static void *sampler_main(void *arg)
{
    (void)arg;
    /* Process-directed signals (SIGINT, SIGTERM...) must go to the program's threads, not here. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    atomic_store(&ae_state.sampler_tid, ae_gettid());

    uint64_t interval = ae_state.interval_ns;
    uint64_t deadline = ae_state.start_ns;
    uint64_t last_scan = ae_state.start_ns;
    uint32_t scan = 1;
    while (!atomic_load(&ae_state.stop_requested)) {
        /* Uniform jitter of +-25% keeps the mean rate while breaking phase-lock with periodic
         * work (py-spy and scalene randomise for the same reason). */
        deadline += interval - interval / 4 + next_random() % (interval / 2 + 1);
        uint64_t now = ae_now_ns();
        if (deadline < now) {
            /* We overslept (host preemption): skip the missed ticks rather than burst. The
             * weights are measured, so nothing is lost but resolution. */
            atomic_fetch_add(&ae_state.late_ticks, 1);
            deadline = now;
        } else {
            struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
            now = ae_now_ns();
        }
        if (atomic_load(&ae_state.stop_requested))
            break;
        if (atomic_load(&ae_state.paused))
            continue;
        if (now - last_scan >= AE_SCAN_PERIOD_NS) {
            scan_threads(now, ++scan, 0);
            last_scan = now;
        }
        tick(now);
        atomic_fetch_add_explicit(&ae_state.ticks, 1, memory_order_relaxed);
    }
    return NULL;
}

/* fork(): the child has no sampler thread (threads do not survive fork), so it must not believe
 * one runs. The parent pauses sending while fork copies the address space: a signal landing in a
 * large clone() makes it restart (vmprof hit this). */
static void atfork_prepare(void)
{
    atomic_store(&ae_state.paused, 1);
}

static void atfork_parent(void)
{
    atomic_store(&ae_state.paused, 0);
}

static void atfork_child(void)
{
    atomic_store(&ae_state.active, 0);
    atomic_store(&ae_state.paused, 0);
    ae_state.running = 0;
    ae_state.pid = getpid();
    for (int i = 0; i < AE_MAX_EXCLUDED; i++)
        atomic_store(&ae_state.excluded[i], 0);
    for (uint32_t i = 0; i < ae_state.slot_hwm; i++) {
        if (ae_state.slots[i].sched_fd > 0)
            close(ae_state.slots[i].sched_fd); /* the parent's threads' files: not ours here */
        ae_state.slots[i].sched_fd = -1;
        if (atomic_load(&ae_state.slots[i].tid) != 0)
            close_trigger(&ae_state.slots[i]); /* the parent threads' overflow events, likewise */
        if (ae_state.slots[i].syscall_fd > 0)
            close(ae_state.slots[i].syscall_fd);
        ae_state.slots[i].sched_fd = ae_state.slots[i].syscall_fd = -1;
    }
}

static int install_handler(int signo)
{
    struct sigaction current;
    if (sigaction(signo, NULL, &current) != 0)
        return -errno;
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == ae_signal_handler)
        return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = ae_signal_handler;
    /* SA_RESTART: reads, writes and waits restart transparently; calls that never restart
     * (sleeps, poll, timed socket ops) return EINTR, which CPython retries (PEP 475). */
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(signo, &action, &ae_state.previous) != 0)
        return -errno;
    ae_state.handler_installed = 1;
    return 0;
}

int ae_sampler_start(const ae_config_t *config)
{
    static int atfork_registered;
    if (ae_state.running)
        return -EBUSY;
    if (config->max_depth < 1 || config->max_depth > AE_MAX_DEPTH || config->interval_ns < 1000)
        return -EINVAL;
    if (config->mode == AE_MODE_TRIGGER) {
        /* Fail here, with the kernel's errno, if the event cannot overflow-signal at all. */
        int fd = ae_ctr_open_trigger(ae_gettid(), config->trigger_type, config->trigger_config,
                                     config->trigger_period, config->signo, config->trigger_user_only);
        if (fd < 0)
            return fd;
        close(fd);
    }
    if (!atfork_registered) {
        if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0)
            return -ENOMEM;
        atfork_registered = 1;
    }
    if (ae_state.ring.base != NULL && ae_state.ring.size < config->ring_bytes)
        ae_ring_destroy(&ae_state.ring);
    if (ae_state.ring.base == NULL) {
        int err = ae_ring_init(&ae_state.ring, config->ring_bytes);
        if (err != 0)
            return err;
    } else {
        ae_ring_reset(&ae_state.ring);
    }

    ae_state.pid = getpid();
    ae_state.mode = config->mode;
    ae_state.interval_ns = config->interval_ns;
    ae_state.max_depth = config->max_depth;
    ae_state.trigger_type = config->trigger_type;
    ae_state.trigger_config = config->trigger_config;
    ae_state.trigger_period = config->trigger_period;
    ae_state.trigger_user_only = config->trigger_user_only;
    if (ae_gil_range(&ae_state.gil_lo, &ae_state.gil_hi) != 0)
        ae_state.gil_lo = ae_state.gil_hi = 0;
    int err = install_handler(config->signo);
    if (err == 0)
        err = ae_install_fault_guard();
    if (err != 0)
        return err;
    ae_state.signo = config->signo;

    for (uint32_t i = 0; i < ae_state.slot_hwm; i++)
    {
        if (ae_state.slots[i].sched_fd > 0)
            close(ae_state.slots[i].sched_fd);
        if (ae_state.slots[i].syscall_fd > 0)
            close(ae_state.slots[i].syscall_fd);
    }
    memset(ae_state.slots, 0, sizeof ae_state.slots);
    ae_state.slot_hwm = 0;
    atomic_store(&ae_state.slot_count, 0);
    atomic_store(&ae_state.trigger_open_failed, 0);
    if (config->mode == AE_MODE_TRIGGER)
        atomic_store(&ae_state.trigger_used, 1);
    atomic_store(&ae_state.ticks, 0);
    atomic_store(&ae_state.late_ticks, 0);
    atomic_store(&ae_state.signals_sent, 0);
    atomic_store(&ae_state.signals_failed, 0);
    atomic_store(&ae_state.idle_records, 0);
    atomic_store(&ae_state.stale_signals, 0);
    atomic_store(&ae_state.no_thread_state, 0);
    atomic_store(&ae_state.lost_weight_ns, 0);
    atomic_store(&ae_state.blocked_skips, 0);
    atomic_store(&ae_state.walk_faults, 0);
    atomic_store(&ae_state.wakeups_seen, 0);
    atomic_store(&ae_state.handler_ns, 0);
    atomic_store(&ae_state.threads_seen, 0);
    atomic_store(&ae_state.threads_untracked, 0);
    atomic_store(&ae_state.stop_requested, 0);
    atomic_store(&ae_state.sampler_tid, 0);
    atomic_fetch_add(&ae_state.generation, 1);

    ae_state.start_ns = ae_now_ns();
    rng_state = ae_state.start_ns | 1;
    /* The threads alive now are the baseline: their CPU so far is not ours to report. */
    scan_threads(ae_state.start_ns, 1, 1);
    atomic_store_explicit(&ae_state.active, 1, memory_order_release);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    err = pthread_create(&ae_state.thread, &attr, sampler_main, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        atomic_store(&ae_state.active, 0);
        return -err;
    }
    ae_state.running = 1;
    return 0;
}

int ae_sampler_stop(void)
{
    if (!ae_state.running)
        return -ESRCH;
    atomic_store(&ae_state.stop_requested, 1);
    pthread_join(ae_state.thread, NULL);
    atomic_store_explicit(&ae_state.active, 0, memory_order_release);
    /* A handler that passed the `active` check may still be writing: wait it out before the
     * final drain reads the ring. Handlers never block, so this is short. */
    while (atomic_load_explicit(&ae_state.in_flight, memory_order_acquire) != 0)
        sched_yield();
    /* Trigger mode: close the overflow events only now, when no handler can be about to re-arm
     * one (a later overflow signal finds `active` clear and does not); each event was armed for
     * one more overflow at most, so they are quiet already. */
    for (uint32_t i = 0; i < ae_state.slot_hwm; i++)
        close_trigger(&ae_state.slots[i]);
    for (uint32_t i = 0; i < ae_state.slot_hwm; i++) {
        ae_slot_t *slot = &ae_state.slots[i];
        atomic_fetch_add(&ae_state.lost_weight_ns, atomic_exchange(&slot->pending_weight_ns, 0));
        if (slot->sched_fd >= 0)
            close(slot->sched_fd);
        if (slot->syscall_fd >= 0)
            close(slot->syscall_fd);
        slot->sched_fd = slot->syscall_fd = -1;
    }
    ae_state.running = 0;
    return 0;
}

int ae_sampler_running(void)
{
    return ae_state.running;
}

ae_ring_t *ae_sampler_ring(void)
{
    return &ae_state.ring;
}

uint64_t ae_sampler_start_ns(void)
{
    return ae_state.start_ns;
}

int ae_sampler_exclude(int tid)
{
    for (int i = 0; i < AE_MAX_EXCLUDED; i++) {
        int32_t expected = 0;
        if (atomic_load(&ae_state.excluded[i]) == tid)
            return 0;
        if (atomic_compare_exchange_strong(&ae_state.excluded[i], &expected, tid))
            return 0;
    }
    return -ENOSPC;
}

void ae_sampler_unexclude(int tid)
{
    for (int i = 0; i < AE_MAX_EXCLUDED; i++) {
        int32_t expected = tid;
        atomic_compare_exchange_strong(&ae_state.excluded[i], &expected, 0);
    }
}

void ae_sampler_stats(ae_stats_t *out)
{
    out->ticks = atomic_load(&ae_state.ticks);
    out->late_ticks = atomic_load(&ae_state.late_ticks);
    out->signals_sent = atomic_load(&ae_state.signals_sent);
    out->signals_failed = atomic_load(&ae_state.signals_failed);
    out->idle_records = atomic_load(&ae_state.idle_records);
    out->foreign_signals = atomic_load(&ae_state.foreign_signals);
    out->stale_signals = atomic_load(&ae_state.stale_signals);
    out->no_thread_state = atomic_load(&ae_state.no_thread_state);
    out->lost_weight_ns = atomic_load(&ae_state.lost_weight_ns);
    out->blocked_skips = atomic_load(&ae_state.blocked_skips);
    out->walk_faults = atomic_load(&ae_state.walk_faults);
    out->wakeups_seen = atomic_load(&ae_state.wakeups_seen);
    out->handler_ns = atomic_load(&ae_state.handler_ns);
    out->threads_seen = atomic_load(&ae_state.threads_seen);
    out->threads_untracked = atomic_load(&ae_state.threads_untracked);
    out->records_written = atomic_load(&ae_state.ring.written);
    out->records_dropped = atomic_load(&ae_state.ring.dropped);
    out->trigger_open_failed = atomic_load(&ae_state.trigger_open_failed);
}
