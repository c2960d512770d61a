/* counters.h - perf_event_open counter groups: open, enable, read with one read(), close.
 *
 * Mechanism only (DESIGN.md): which events to group, which threads to count, how to name and
 * scale them is decided by aether_native/counters.py. One ae_ctr_group_t is one perf_event group
 * (a leader and its members) counting one thread, or one thread and everything it starts later
 * (inherit). An event that cannot be opened keeps its errno, so the caller can say why it is
 * unavailable instead of reporting zero.
 */
#ifndef AETHER_COUNTERS_H
#define AETHER_COUNTERS_H

#include <stdint.h>

#define AE_CTR_MAX_EVENTS 16

/* How the group's events were opened, per event: kernel counting allowed, or user-only because
 * the kernel refused kernel-mode counting (perf_event_paranoid >= 2 without CAP_PERFMON). */
enum { AE_CTR_ALL_MODES = 0, AE_CTR_USER_ONLY = 1 };

typedef struct {
    int n;                            /* events asked for */
    uint32_t type[AE_CTR_MAX_EVENTS]; /* PERF_TYPE_* */
    uint64_t config[AE_CTR_MAX_EVENTS];
    int fd[AE_CTR_MAX_EVENTS];        /* -1: not open (see err) */
    int err[AE_CTR_MAX_EVENTS];       /* errno of the last failed open, 0 when open */
    int mode[AE_CTR_MAX_EVENTS];      /* AE_CTR_ALL_MODES or AE_CTR_USER_ONLY, when open */
    uint64_t id[AE_CTR_MAX_EVENTS];   /* PERF_EVENT_IOC_ID: matches the ids in a group read */
    int leader;                       /* index of the leader event, -1 when nothing opened */
    int grouped;                      /* 1: one read() of the leader returns every member */
    int tid;
    int inherit;
} ae_ctr_group_t;

/* Open `n` events (types[i], configs[i]) as one group counting thread `tid` (0 = the caller) on
 * any CPU. inherit=1 also counts threads and processes the thread creates after the open.
 * user_only=1 asks for user-mode counting only; otherwise kernel-mode counting is tried first and
 * an EACCES/EPERM retried user-only. The group starts disabled. Returns the number of events
 * opened (0..n), or -errno for bad arguments. */
int ae_ctr_open(ae_ctr_group_t *g, int tid, int inherit, int user_only, const uint32_t *types,
                const uint64_t *configs, int n);
/* PERF_EVENT_IOC_{ENABLE,DISABLE,RESET} on the whole group. 0 or -errno. */
int ae_ctr_enable(ae_ctr_group_t *g);
int ae_ctr_disable(ae_ctr_group_t *g);
int ae_ctr_reset(ae_ctr_group_t *g);
/* Read every open event: raw values, and each one's enabled/running times in ns (one read() for
 * a grouped set). Events that are not open are left untouched. 0 or -errno. */
int ae_ctr_read(ae_ctr_group_t *g, uint64_t *values, uint64_t *enabled, uint64_t *running);
void ae_ctr_close(ae_ctr_group_t *g);
/* Probe one event on the calling thread (open, close): 0, or the errno that refused it. */
int ae_ctr_probe(uint32_t type, uint64_t config, int user_only);
/* /proc/sys/kernel/perf_event_paranoid, or INT32_MIN when it cannot be read. */
int ae_ctr_paranoid(void);

/* Counter-triggered sampling: an overflow-signalling event on thread `tid` that delivers `signo`
 * to that thread every `period` events (fcntl F_SETOWN_EX to the tid, F_SETSIG, O_ASYNC; each
 * signal re-arms itself with PERF_EVENT_IOC_REFRESH in the handler). Returns the fd or -errno. */
int ae_ctr_open_trigger(int tid, uint32_t type, uint64_t config, uint64_t period, int signo, int user_only);

#endif
