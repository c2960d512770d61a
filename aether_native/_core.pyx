# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython binding of the C core: start/stop the sampler, drain the ring, resolve code objects.

Everything here runs with the GIL. The drain turns ring records into interned frames and stacks
and appends one row per sample to growable C columns; aether_native.sampler turns those into an
aether_perf.Profile. Code-object lifetime: every code object the drain resolves is kept alive
(``_code_refs``) until the session's data is taken, so its address cannot be reused meanwhile;
code objects that die before the drain sees them were rewritten into tombstones by codehook.c.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc
from cpython.ref cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy

cdef extern from "Python.h":
    ctypedef struct PyCodeObject
    int PyCode_Addr2Line(PyCodeObject *code, int byte_offset)

cdef extern from "ring.h":
    ctypedef struct ae_frame_t:
        uintptr_t code
        int32_t lasti
    ctypedef struct ae_record_t:
        uint32_t size
        uint64_t time_ns
        uint64_t weight_ns
        int32_t tid
        uint16_t depth
        uint8_t flags
        ae_frame_t frames[1]
    ctypedef struct ae_ring_t:
        uint64_t size
    int AE_REC_SAMPLE
    int AE_REC_IDLE
    ae_record_t *ae_ring_peek(ae_ring_t *ring, uint64_t *pos) nogil
    void ae_ring_release(ae_ring_t *ring, uint64_t upto) nogil
    uint32_t ae_record_state(ae_record_t *rec) nogil
    uint64_t ae_ring_tail(ae_ring_t *ring) nogil

cdef extern from "state.h":
    int AE_MODE_CPU
    int AE_MODE_WALL
    int AE_MODE_TRIGGER
    int AE_MAX_DEPTH

cdef extern from "sampler.h":
    ctypedef struct ae_config_t:
        int mode
        uint64_t interval_ns
        int max_depth
        int signo
        uint64_t ring_bytes
        uint32_t trigger_type
        uint64_t trigger_config
        uint64_t trigger_period
        int trigger_user_only
    ctypedef struct ae_stats_t:
        uint64_t ticks, late_ticks, signals_sent, signals_failed, idle_records, foreign_signals
        uint64_t stale_signals, no_thread_state, lost_weight_ns, blocked_skips, walk_faults, wakeups_seen
        uint64_t handler_ns
        uint64_t threads_seen, threads_untracked
        uint64_t records_written, records_dropped, trigger_open_failed
    int ae_sampler_start(const ae_config_t *config)
    int ae_sampler_stop() nogil
    int ae_sampler_running()
    ae_ring_t *ae_sampler_ring()
    void ae_sampler_stats(ae_stats_t *out)
    int ae_sampler_exclude(int tid)
    void ae_sampler_unexclude(int tid)
    uint64_t ae_sampler_start_ns()
    uint64_t ae_clock_ns()
    int ae_current_tid()

cdef extern from "codehook.h":
    int ae_codehook_install(ae_ring_t *ring) except -1
    void ae_codehook_uninstall()
    size_t ae_tomb_count()
    int ae_tomb_get(size_t index, PyObject **qualname, PyObject **filename, int *first_line)
    void ae_tomb_clear()
    uint64_t ae_codehook_rescued()

MODE_CPU = AE_MODE_CPU
MODE_WALL = AE_MODE_WALL
MODE_TRIGGER = AE_MODE_TRIGGER
MAX_DEPTH = AE_MAX_DEPTH

UNKNOWN_FRAME = ("<unknown>", "", 0, 0)


cdef class _Column:
    """A growable array of fixed-size items in raw memory (no Python objects per row)."""
    cdef char *data
    cdef size_t itemsize, length, capacity

    def __cinit__(self, size_t itemsize):
        self.itemsize = itemsize

    def __dealloc__(self):
        PyMem_RawFree(self.data)

    cdef int grow(self) except -1:
        cdef size_t capacity = self.capacity * 2 if self.capacity else 4096
        cdef char *data = <char *>PyMem_RawRealloc(self.data, capacity * self.itemsize)
        if data == NULL:
            raise MemoryError()
        self.data = data
        self.capacity = capacity
        return 0

    cdef inline int append(self, const void *item) except -1:
        if self.length == self.capacity:
            self.grow()
        memcpy(self.data + self.length * self.itemsize, item, self.itemsize)
        self.length += 1
        return 0

    cdef bytes take(self):
        cdef bytes out = PyBytes_FromStringAndSize(self.data, self.length * self.itemsize)
        self.length = 0
        return out


cdef class _FrameTable:
    """Frames as (qualname, filename, line, first_line), interned in first-seen order, with the
    (code address, instruction offset) -> frame cache in front of them. Shared by the sampler's
    and the allocation tracker's sessions."""
    cdef dict _by_pc     # (code address, lasti) -> frame index
    cdef dict _by_key    # (qualname, filename, line, first_line) -> frame index
    cdef public list frames

    def __cinit__(self):
        self._by_pc = {}
        self._by_key = {}
        self.frames = []

    cdef Py_ssize_t intern(self, tuple key) except -1:
        cdef object index = self._by_key.get(key)
        if index is None:
            index = len(self.frames)
            self.frames.append(key)
            self._by_key[key] = index
        return index

    cdef Py_ssize_t code_frame(self, object code, uintptr_t address, int32_t lasti) except -1:
        """The frame of a live code object (the caller keeps it alive) at instruction `lasti`."""
        pc = (address, lasti)
        cdef object index = self._by_pc.get(pc)
        if index is None:
            line = PyCode_Addr2Line(<PyCodeObject *><PyObject *>code, lasti * 2)
            if line < 0:  # an instruction without a line (a generator's prologue): its def line
                line = code.co_firstlineno
            index = self.intern((code.co_qualname, code.co_filename, line, code.co_firstlineno))
            self._by_pc[pc] = index
        return index


cdef class Session:
    """One recording session of the C sampler. Only one may run at a time (the C core is
    process-wide); ``start`` raises OSError(EBUSY) otherwise."""

    cdef dict _code_refs      # code address -> code object: keeps resolved code objects alive
    cdef _FrameTable _table
    cdef dict _stack_by_raw   # raw ring bytes of a stack -> stack index
    cdef dict _stack_by_ids   # tuple of frame indices (root first) -> stack index
    cdef list _stacks
    cdef dict _last_stack     # tid -> stack index of its latest sample (for IDLE records)
    cdef set _tids
    cdef _Column _c_stack, _c_tid, _c_time, _c_weight, _c_flags
    cdef bint _draining
    cdef uint64_t _start_ns
    cdef public object running

    def __cinit__(self):
        self._c_stack = _Column(4)
        self._c_tid = _Column(8)
        self._c_time = _Column(8)
        self._c_weight = _Column(8)
        self._c_flags = _Column(1)
        self._reset()
        self.running = False

    cdef _reset(self):
        self._code_refs = {}
        self._table = _FrameTable()
        self._stack_by_raw = {}
        self._stack_by_ids = {}
        self._stacks = []
        self._last_stack = {}
        self._tids = set()

    def start(self, int mode, uint64_t interval_ns, int max_depth, int signo, uint64_t ring_bytes,
              uint32_t trigger_type=0, uint64_t trigger_config=0, uint64_t trigger_period=0,
              bint trigger_user_only=False):
        """Start sampling; returns the CLOCK_MONOTONIC ns that sample times count from. MODE_TRIGGER
        samples each thread every `trigger_period` events of perf event (type, config)."""
        cdef ae_config_t config
        if ae_sampler_running():
            raise OSError(16, "another sampler is already running in this process")
        self._reset()
        ae_tomb_clear()
        config.mode = mode
        config.interval_ns = interval_ns
        config.max_depth = max_depth
        config.signo = signo
        config.ring_bytes = ring_bytes
        config.trigger_type = trigger_type
        config.trigger_config = trigger_config
        config.trigger_period = trigger_period
        config.trigger_user_only = trigger_user_only
        # The hook must watch the ring before the first sample can name a code object.
        ae_codehook_install(ae_sampler_ring())
        cdef int err = ae_sampler_start(&config)
        if err != 0:
            ae_codehook_uninstall()
            raise OSError(-err, "cannot start the sampler: " + __import__("os").strerror(-err))
        self._start_ns = ae_sampler_start_ns()
        self.running = True
        return self._start_ns

    def stop(self):
        """Stop the sampler thread and wait for in-flight handlers; the caller drains after."""
        cdef int err
        with nogil:
            err = ae_sampler_stop()
        self.running = False
        if err != 0:
            raise OSError(-err, "the sampler was not running")

    def finish(self):
        """After the final drain: stop watching code deaths."""
        ae_codehook_uninstall()

    cdef Py_ssize_t _resolve(self, ae_frame_t *frame) except -1:
        # Read the entry afresh: a code-death hook may have rewritten it since the record was
        # first looked at (any allocation below may run the GC, which may free code objects).
        cdef uintptr_t address = frame.code
        cdef int32_t lasti = frame.lasti
        cdef PyObject *qualname
        cdef PyObject *filename
        cdef int first_line
        if address & 1:
            if ae_tomb_get(address >> 1, &qualname, &filename, &first_line) != 0:
                return self._table.intern(UNKNOWN_FRAME)
            return self._table.intern((<object>qualname, <object>filename, lasti, first_line))
        # PyLong keys are not GC-tracked: creating them cannot free the code object before we
        # hold it. Once held (here, or in an earlier drain), it stays alive for the session.
        cdef object key = address
        cdef object code = self._code_refs.get(key)
        if code is None:
            code = <object><PyObject *>address
            self._code_refs[key] = code
        return self._table.code_frame(code, address, lasti)

    cdef Py_ssize_t _stack_of(self, ae_record_t *rec) except -1:
        cdef Py_ssize_t depth = rec.depth
        cdef bytes raw = PyBytes_FromStringAndSize(<char *>rec.frames, depth * sizeof(ae_frame_t))
        cdef object index = self._stack_by_raw.get(raw)
        if index is not None:
            return index
        cdef list ids = [0] * depth
        cdef Py_ssize_t i
        for i in range(depth):
            ids[depth - 1 - i] = self._resolve(&rec.frames[i])
        cdef tuple stack = tuple(ids)
        index = self._stack_by_ids.get(stack)
        if index is None:
            index = len(self._stacks)
            self._stacks.append(stack)
            self._stack_by_ids[stack] = index
        # Key by the entries as they are now: every address in them is held or a tombstone,
        # so the same bytes can never later stand for another function.
        raw = PyBytes_FromStringAndSize(<char *>rec.frames, depth * sizeof(ae_frame_t))
        self._stack_by_raw[raw] = index
        return index

    def drain(self):
        """Consume every published record; returns how many samples were added."""
        if self._draining:
            return 0
        self._draining = True
        cdef ae_ring_t *ring = ae_sampler_ring()
        cdef uint64_t pos = ae_ring_tail(ring)
        cdef ae_record_t *rec
        cdef int32_t stack
        cdef int64_t value
        cdef uint8_t flags
        cdef Py_ssize_t added = 0
        try:
            while True:
                rec = ae_ring_peek(ring, &pos)
                if rec == NULL:
                    break
                if ae_record_state(rec) == AE_REC_SAMPLE:
                    stack = <int32_t>self._stack_of(rec)
                    self._last_stack[rec.tid] = stack
                else:  # AE_REC_IDLE: the thread has not run since its previous sample
                    stack = <int32_t>self._last_stack.get(rec.tid, self._empty_stack())
                if rec.tid not in self._tids:
                    self._tids.add(rec.tid)
                self._c_stack.append(&stack)
                value = rec.tid
                self._c_tid.append(&value)
                value = <int64_t>(rec.time_ns - self._start_ns)
                self._c_time.append(&value)
                value = <int64_t>rec.weight_ns
                self._c_weight.append(&value)
                flags = rec.flags
                self._c_flags.append(&flags)
                added += 1
                pos += rec.size
            ae_ring_release(ring, pos)
        finally:
            self._draining = False
        return added

    cdef Py_ssize_t _empty_stack(self) except -1:
        cdef tuple empty = ()
        index = self._stack_by_ids.get(empty)
        if index is None:
            index = len(self._stacks)
            self._stacks.append(empty)
            self._stack_by_ids[empty] = index
        return index

    def thread_ids(self):
        return set(self._tids)

    def take(self):
        """Hand over everything recorded and release the code objects held for the session.

        Returns (frames, stacks, columns) where frames are (qualname, filename, line,
        first_line) tuples, stacks tuples of frame indices (root first), and columns a dict of
        raw little-endian bytes: stack int32, tid/time_ns/weight_ns int64, flags uint8."""
        columns = {
            "stack": self._c_stack.take(),
            "tid": self._c_tid.take(),
            "time_ns": self._c_time.take(),
            "weight_ns": self._c_weight.take(),
            "flags": self._c_flags.take(),
        }
        frames, stacks = self._table.frames, self._stacks
        self._reset()
        ae_tomb_clear()
        return frames, stacks, columns


def stats():
    """The C core's counters for the current (or last) session."""
    cdef ae_stats_t s
    ae_sampler_stats(&s)
    return {
        "ticks": s.ticks,
        "late_ticks": s.late_ticks,
        "signals_sent": s.signals_sent,
        "signals_failed": s.signals_failed,
        "idle_records": s.idle_records,
        "foreign_signals": s.foreign_signals,
        "stale_signals": s.stale_signals,
        "no_thread_state": s.no_thread_state,
        "lost_weight_ns": s.lost_weight_ns,
        "blocked_skips": s.blocked_skips,
        "walk_faults": s.walk_faults,
        "wakeups_seen": s.wakeups_seen,
        "handler_ns": s.handler_ns,
        "threads_seen": s.threads_seen,
        "threads_untracked": s.threads_untracked,
        "records_written": s.records_written,
        "records_dropped": s.records_dropped,
        "trigger_open_failed": s.trigger_open_failed,
        "code_objects_rescued": ae_codehook_rescued(),
    }


def exclude_current_thread():
    """Never sample the calling thread (the drain thread: its work is ours, not the program's)."""
    cdef int tid = ae_current_tid()
    if ae_sampler_exclude(tid) != 0:
        raise OSError(28, "too many excluded threads")
    return tid


def unexclude_thread(int tid):
    ae_sampler_unexclude(tid)


def running():
    return bool(ae_sampler_running())


def clock_ns():
    """CLOCK_MONOTONIC in ns, the clock sample times are taken on."""
    return ae_clock_ns()


# ------------------------------------------------------------------------------------------------
# Allocation tracking (csrc/alloc.c)

from cpython.bytes cimport PyBytes_AS_STRING

cdef extern from "alloc.h":
    int AE_ALLOC_EXACT
    int AE_ALLOC_SAMPLED
    int AE_ALLOC_MAX_DEPTH
    uint32_t AE_ALLOC_NO_STACK
    ctypedef struct ae_alloc_stats_t:
        uint64_t allocated_bytes, allocations, freed_bytes, frees, current_bytes, peak_bytes
        uint64_t live_blocks, sampled_allocations, stacks, unattributed, untracked, foreign_frees
        uint64_t start_ns, stop_ns, threads
    ctypedef struct ae_thread_stats_t:
        int64_t tid
        uint64_t allocated_bytes, allocations, freed_bytes, frees
    ctypedef struct ae_peak_row_t:
        uint64_t bytes, count
        uint32_t stack
    ctypedef struct ae_live_t:
        uint64_t ptr
        uint64_t size
        uint64_t time_ns
        uint32_t stack
        int32_t tid
    int ae_alloc_start(int mode, uint64_t sample_rate, int max_depth)
    int ae_alloc_stop()
    void ae_alloc_reset()
    int ae_alloc_running()
    void ae_alloc_stats(ae_alloc_stats_t *out)
    int ae_alloc_live(ae_live_t **out, size_t *count)
    void ae_alloc_live_free(ae_live_t *blocks, size_t count)
    int ae_alloc_stack(uint32_t id, ae_frame_t *out, int max)
    ctypedef struct ae_stack_totals_t:
        uint64_t hits
        double count
        double bytes
        double growths
    int ae_alloc_stack_totals(uint32_t id, ae_stack_totals_t *out)
    void ae_alloc_ignore_thread(int ignore)
    int ae_alloc_threads(ae_thread_stats_t **out, size_t *count, size_t *capacity)
    void ae_alloc_threads_free(ae_thread_stats_t *rows, size_t capacity)
    int ae_alloc_capture_peak() nogil
    int ae_alloc_peak(ae_peak_row_t **out, size_t *count, uint64_t *heap_bytes, uint64_t *at_ns)
    void ae_alloc_peak_free(ae_peak_row_t *rows, size_t count)
    void ae_alloc_after_fork_child()
    int ae_alloc_sampled_shadow()
    void ae_alloc_debug_hold_lock(uint64_t ns) nogil
    int ae_alloc_native_start()
    int ae_alloc_native_stop()
    void ae_alloc_native_counts(size_t *objects, size_t *slots)

ALLOC_EXACT = AE_ALLOC_EXACT
ALLOC_SAMPLED = AE_ALLOC_SAMPLED
ALLOC_MAX_DEPTH = AE_ALLOC_MAX_DEPTH


cdef class HeapSession:
    """One allocation-tracking session of the C core (process-wide: ``start`` raises
    OSError(EBUSY) while another one runs).

    Stacks are interned in C and hold strong references to their code objects until the session
    is stopped (``stop`` captures the live blocks and resolves them first), so a code address seen
    here always names the object that made the allocation. Resolution is cached per session."""

    cdef _FrameTable _table
    cdef dict _stack_by_cid     # C stack id -> stack index
    cdef dict _stack_by_ids     # tuple of frame indices (root first) -> stack index
    cdef list _stacks
    cdef object _final          # (live, stats, sites, threads, peak) captured at stop
    cdef ae_alloc_stats_t _s
    cdef public object running
    cdef public object forked   # stopped by a fork: this is the child's copy
    cdef public object native_slots  # GOT slots patched by start_native (0: not native)

    def __cinit__(self):
        self._table = _FrameTable()
        self._stack_by_cid = {}
        self._stack_by_ids = {}
        self._stacks = []
        self._final = None
        self.running = False
        self.forked = False
        self.native_slots = 0

    def start(self, int mode, uint64_t sample_rate, int max_depth):
        """Install the hooks and start recording; returns the CLOCK_MONOTONIC start in ns."""
        cdef int err = ae_alloc_start(mode, sample_rate, max_depth)
        if err != 0:
            raise OSError(-err, "cannot start allocation tracking: " + __import__("os").strerror(-err))
        self.running = True
        self._final = None
        return self.stats()["start_ns"]

    def start_native(self):
        """While running: also track malloc/free/mmap & co. of C extensions by patching their
        GOT slots (and the interpreter's dlopen, for modules loaded later). Returns the number of
        slots patched."""
        cdef int n
        if not self.running:
            raise OSError(22, "allocation tracking is not running")
        n = ae_alloc_native_start()
        if n < 0:
            raise OSError(-n, "cannot patch the loaded objects: " + __import__("os").strerror(-n))
        self.native_slots = n
        return n

    def native_counts(self):
        """(objects, slots) patched right now (modules imported since start add to them)."""
        cdef size_t objects = 0, slots = 0
        ae_alloc_native_counts(&objects, &slots)
        return objects, slots

    def stop(self, before_capture=None):
        """Stop recording, capture the live blocks and totals as they are now, then drop the C
        tables (releasing the code objects their stacks held). Native patches come off first.

        ``before_capture`` runs after the hooks stopped recording and before the capture: what it
        frees is still in the (frozen) tables, so a caller short of memory can release its data
        first. If the capture fails (MemoryError), the tables are kept and :meth:`capture` retries."""
        ae_alloc_native_stop()
        if ae_alloc_stop() != 0:
            raise OSError(22, "allocation tracking was not running")
        self.running = False
        if before_capture is not None:
            before_capture()
        self.capture()

    def capture(self):
        """Capture the stopped session's live blocks and drop the C tables (once; a no-op after)."""
        if self._final is not None or self.running:
            return
        self._final = (self._live_now(), self.stats(), self._sites_now(), self.threads(), self._peak_now())
        ae_alloc_reset()

    def after_fork_child(self):
        """In a forked child: the C core stopped recording at fork; uninstall the inherited hooks
        and keep the totals as they were at fork (live blocks are not copied out)."""
        ae_alloc_native_stop()
        ae_alloc_after_fork_child()
        if self.running:
            self.running = False
            self.forked = True
            self._final = (None, self.stats(), ([], [], []), self.threads(), None)

    def threads(self):
        """Exact per-thread totals: {tid: {allocated_bytes, allocations, freed_bytes, frees}};
        tid -1 sums the threads past the C core's slot limit (16383 per session)."""
        cdef ae_thread_stats_t *rows = NULL
        cdef size_t count = 0, capacity = 0, k
        if self._final is not None:
            return {tid: dict(row) for tid, row in self._final[3].items()}
        if ae_alloc_threads(&rows, &count, &capacity) != 0:
            raise MemoryError()
        out = {}
        try:
            for k in range(count):
                row = out.setdefault(rows[k].tid, {"allocated_bytes": 0, "allocations": 0,
                                                   "freed_bytes": 0, "frees": 0})
                # A tid the kernel reused within a session had two slots: one row per tid.
                row["allocated_bytes"] += rows[k].allocated_bytes
                row["allocations"] += rows[k].allocations
                row["freed_bytes"] += rows[k].freed_bytes
                row["frees"] += rows[k].frees
        finally:
            ae_alloc_threads_free(rows, capacity)
        return out

    def capture_peak(self):
        """Exact mode: if the heap is above the last captured peak, copy every stack's live bytes
        and blocks now; True if this call captured a new peak. Cheap when it does not (one
        comparison under the allocator lock); callable from any thread (releases the GIL)."""
        cdef int captured
        if not self.running:
            return False
        with nogil:
            captured = ae_alloc_capture_peak()
        return bool(captured)

    cdef tuple _peak_now(self):
        cdef ae_peak_row_t *rows = NULL
        cdef size_t count = 0, k
        cdef uint64_t heap = 0, at_ns = 0
        ae_alloc_ignore_thread(1)
        try:
            if ae_alloc_peak(&rows, &count, &heap, &at_ns) != 0:
                raise MemoryError()
            try:
                stack_ids = [0] * count
                nbytes = [0] * count
                blocks = [0] * count
                for k in range(count):
                    stack_ids[k] = self._stack_of(rows[k].stack)
                    nbytes[k] = rows[k].bytes
                    blocks[k] = rows[k].count
            finally:
                ae_alloc_peak_free(rows, count)
            return (list(self._table.frames), list(self._stacks),
                    {"stack": stack_ids, "bytes": nbytes, "count": blocks},
                    {"heap_bytes": heap, "at_ns": at_ns})
        finally:
            ae_alloc_ignore_thread(0)

    def peak_stacks(self):
        """The stacks live at the captured peak (exact mode) as (frames, stacks, columns, info):
        frames/stacks as in live(); columns lists stack (index into stacks), bytes, count (live
        blocks); info {heap_bytes: the tracked heap at the capture, at_ns: when, since start}.
        Empty in sampled mode. While running: as of the last capture; after stop: final."""
        if self._final is not None:
            if self._final[4] is None:
                raise OSError(22, "no peak was kept (the session ended in a forked child)")
            return self._final[4]
        if not self.running:
            raise OSError(22, "allocation tracking has not been started")
        return self._peak_now()

    def stats(self):
        cdef ae_alloc_stats_t s
        if self._final is not None:
            return dict(self._final[1])
        ae_alloc_stats(&s)
        return {
            "allocated_bytes": s.allocated_bytes,
            "allocations": s.allocations,
            "freed_bytes": s.freed_bytes,
            "frees": s.frees,
            "current_bytes": s.current_bytes,
            "peak_bytes": s.peak_bytes,
            "live_blocks": s.live_blocks,
            "sampled_allocations": s.sampled_allocations,
            "stacks": s.stacks,
            "unattributed": s.unattributed,
            "untracked": s.untracked,
            "foreign_frees": s.foreign_frees,
            "threads": s.threads,
            "start_ns": s.start_ns,
            "stop_ns": s.stop_ns,
        }

    cdef Py_ssize_t _resolve(self, ae_frame_t *frame) except -1:
        # The C stack table holds a strong reference to this code object until ae_alloc_reset.
        return self._table.code_frame(<object><PyObject *>frame.code, frame.code, frame.lasti)

    cdef Py_ssize_t _stack_of(self, uint32_t cid) except -1:
        cdef object index = self._stack_by_cid.get(cid)
        if index is not None:
            return index
        cdef ae_frame_t frames[256]
        cdef int depth = ae_alloc_stack(cid, frames, 256)
        cdef list ids = []
        cdef int i
        if depth > 0:
            ids = [0] * depth
            for i in range(depth):
                ids[depth - 1 - i] = self._resolve(&frames[i])
        cdef tuple stack = tuple(ids)
        index = self._stack_by_ids.get(stack)
        if index is None:
            index = len(self._stacks)
            self._stacks.append(stack)
            self._stack_by_ids[stack] = index
        self._stack_by_cid[cid] = index
        return index

    cdef tuple _live_now(self):
        cdef ae_live_t *blocks = NULL
        cdef size_t count = 0, k
        cdef int32_t *c_stack
        cdef int64_t *c_size
        cdef int64_t *c_tid
        cdef int64_t *c_time
        ae_alloc_ignore_thread(1)  # our own work below is not the program's
        try:
            if ae_alloc_live(&blocks, &count) != 0:
                raise MemoryError()
            try:
                stack = PyBytes_FromStringAndSize(NULL, count * 4)
                size = PyBytes_FromStringAndSize(NULL, count * 8)
                tid = PyBytes_FromStringAndSize(NULL, count * 8)
                time_ns = PyBytes_FromStringAndSize(NULL, count * 8)
                c_stack = <int32_t *>PyBytes_AS_STRING(stack)
                c_size = <int64_t *>PyBytes_AS_STRING(size)
                c_tid = <int64_t *>PyBytes_AS_STRING(tid)
                c_time = <int64_t *>PyBytes_AS_STRING(time_ns)
                for k in range(count):
                    c_stack[k] = <int32_t>self._stack_of(blocks[k].stack)
                    c_size[k] = <int64_t>blocks[k].size
                    c_tid[k] = blocks[k].tid
                    c_time[k] = <int64_t>blocks[k].time_ns
            finally:
                ae_alloc_live_free(blocks, count)
            columns = {"stack": stack, "size": size, "tid": tid, "time_ns": time_ns}
            return (list(self._table.frames), list(self._stacks), columns)
        finally:
            ae_alloc_ignore_thread(0)

    cdef tuple _sites_now(self):
        cdef ae_stack_totals_t t
        cdef uint32_t cid
        cdef uint32_t n
        cdef list rows = []
        ae_alloc_ignore_thread(1)
        try:
            ae_alloc_stats(&self._s)
            n = <uint32_t>self._s.stacks
            for cid in range(n):
                if ae_alloc_stack_totals(cid, &t) != 0 or t.hits == 0:
                    continue
                rows.append((self._stack_of(cid), t.hits, t.count, t.bytes, t.growths))
            return (list(self._table.frames), list(self._stacks), rows)
        finally:
            ae_alloc_ignore_thread(0)

    def sites(self):
        """What each stack allocated since start, freed or not, as (frames, stacks, rows): rows
        are (stack index, hits, count, bytes, growths) with the weighted sums of
        ae_stack_totals_t (exact mode: plain counts). While running: now; after stop: at stop."""
        if self._final is not None:
            return self._final[2]
        if not self.running:
            raise OSError(22, "allocation tracking has not been started")
        return self._sites_now()

    def live(self):
        """The live blocks (sampled mode: the sampled ones) as (frames, stacks, columns): frames
        are (qualname, filename, line, first_line) tuples, stacks tuples of frame indices (root
        first), columns raw little-endian bytes: stack int32, size/tid/time_ns int64. While
        running: now; after stop: as they were at stop."""
        if self._final is not None:
            if self._final[0] is None:
                raise OSError(22, "no live blocks were kept (the session ended in a forked child)")
            return self._final[0]
        if not self.running:
            raise OSError(22, "allocation tracking has not been started")
        return self._live_now()


def alloc_running():
    return bool(ae_alloc_running())


# ---- perf_event counters (csrc/counters.c) -----------------------------------------------------

cdef extern from "counters.h":
    int AE_CTR_MAX_EVENTS
    ctypedef struct ae_ctr_group_t:
        int n
        int fd[16]
        int err[16]
        int mode[16]
        int leader
        int grouped
    int ae_ctr_open(ae_ctr_group_t *g, int tid, int inherit, int user_only, const uint32_t *types,
                    const uint64_t *configs, int n)
    int ae_ctr_enable(ae_ctr_group_t *g)
    int ae_ctr_disable(ae_ctr_group_t *g)
    int ae_ctr_reset(ae_ctr_group_t *g)
    int ae_ctr_read(ae_ctr_group_t *g, uint64_t *values, uint64_t *enabled, uint64_t *running) nogil
    void ae_ctr_close(ae_ctr_group_t *g)
    int ae_ctr_probe(uint32_t type, uint64_t config, int user_only)
    int ae_ctr_paranoid()
    int ae_ctr_open_trigger(int tid, uint32_t type, uint64_t config, uint64_t period, int signo, int user_only)

COUNTER_MAX_EVENTS = AE_CTR_MAX_EVENTS


cdef class CounterGroup:
    """One perf_event group (leader + members) counting one thread (tid 0: the caller), or that
    thread and what it starts later (inherit). Events that failed to open keep their errno."""

    cdef ae_ctr_group_t _g
    cdef bint _open

    def __cinit__(self):
        self._open = False
        self._g.leader = -1

    def __init__(self, list events, int tid=0, bint inherit=False, bint user_only=False):
        """`events`: (perf type, config) pairs, at most COUNTER_MAX_EVENTS."""
        cdef uint32_t types[16]
        cdef uint64_t configs[16]
        cdef int n = len(events)
        if n < 1 or n > AE_CTR_MAX_EVENTS:
            raise ValueError(f"a counter group holds 1 to {AE_CTR_MAX_EVENTS} events, not {n}")
        for i, (kind, config) in enumerate(events):
            types[i] = kind
            configs[i] = config
        rc = ae_ctr_open(&self._g, tid, inherit, user_only, types, configs, n)
        if rc < 0:
            raise OSError(-rc, f"perf_event_open failed: {rc}")
        self._open = True

    def __dealloc__(self):
        if self._open:
            ae_ctr_close(&self._g)

    def errors(self):
        """errno per event (0 when it is open)."""
        return [self._g.err[i] for i in range(self._g.n)]

    def user_only(self):
        """Per event: True when it counts user mode only (the kernel refused kernel counting)."""
        return [bool(self._g.fd[i] >= 0 and self._g.mode[i] == 1) for i in range(self._g.n)]

    @property
    def grouped(self):
        """True when one read() returns every member (False: kernels refusing GROUP+inherit)."""
        return bool(self._g.grouped)

    def _check(self, int rc, str what):
        if rc < 0:
            raise OSError(-rc, f"perf_event {what} failed")

    def enable(self):
        self._check(ae_ctr_enable(&self._g), "enable")

    def disable(self):
        self._check(ae_ctr_disable(&self._g), "disable")

    def reset(self):
        self._check(ae_ctr_reset(&self._g), "reset")

    def read(self):
        """[(value, time_enabled_ns, time_running_ns) or None for an event that is not open]."""
        cdef uint64_t values[16]
        cdef uint64_t enabled[16]
        cdef uint64_t running[16]
        cdef int rc
        if not self._open:
            raise OSError(9, "counter group is closed")
        with nogil:
            rc = ae_ctr_read(&self._g, values, enabled, running)
        self._check(rc, "read")
        return [
            (values[i], enabled[i], running[i]) if self._g.fd[i] >= 0 else None
            for i in range(self._g.n)
        ]

    def read_ns(self, int repeat):
        """Mean cost in ns of one group read, over `repeat` reads (for the benchmark)."""
        cdef uint64_t values[16]
        cdef uint64_t enabled[16]
        cdef uint64_t running[16]
        cdef int k
        cdef uint64_t t0, t1
        t0 = ae_clock_ns()
        with nogil:
            for k in range(repeat):
                ae_ctr_read(&self._g, values, enabled, running)
        t1 = ae_clock_ns()
        return (t1 - t0) / max(repeat, 1)

    def close(self):
        if self._open:
            ae_ctr_close(&self._g)
            self._open = False


def counter_probe(uint32_t kind, uint64_t config, bint user_only=False):
    """0 if the event opens on this thread, else the errno that refused it."""
    return ae_ctr_probe(kind, config, user_only)


def perf_event_paranoid():
    """/proc/sys/kernel/perf_event_paranoid, or None when it cannot be read."""
    value = ae_ctr_paranoid()
    return None if value == -2147483648 else value


def alloc_ignore_current_thread(bint ignore):
    """Ignore (True) or track again (False) the calling thread's allocations (its frees are still
    seen). The memory-series thread sets it for its whole life: its own ints and list growth are
    our work, not the program's."""
    ae_alloc_ignore_thread(1 if ignore else 0)


def alloc_current_bytes():
    """The tracked heap now (allocated minus freed since start, exact), without building a dict."""
    cdef ae_alloc_stats_t s
    ae_alloc_stats(&s)
    return s.current_bytes


def alloc_sampled_shadow():
    """True if sampled mode keeps unsampled block sizes in the lock-free size shadow (False: it
    could not map its address space and uses the locked table for every block)."""
    return bool(ae_alloc_sampled_shadow())


def _debug_hold_alloc_lock(double seconds):
    """Tests only: hold the allocator lock for `seconds` (releases the GIL meanwhile)."""
    cdef uint64_t ns = <uint64_t>(seconds * 1e9)
    with nogil:
        ae_alloc_debug_hold_lock(ns)
