/* frames_py312.h - CPython 3.12 frame layout (internal/pycore_frame.h).
 *   innermost:  tstate->cframe->current_frame
 *   code:       f_code (first field since 3.12)
 *   position:   prev_instr, as in 3.11
 *   C entries:  a shim frame with owner == FRAME_OWNED_BY_CSTACK whose f_code is the interpreter
 *               trampoline: a real code object, so it must be skipped by owner, not by type.
 */
static inline _PyInterpreterFrame *ae_top_frame(PyThreadState *tstate)
{
    _PyCFrame *cframe = tstate->cframe;
    return cframe != NULL ? cframe->current_frame : NULL;
}

static inline int ae_frame_is_shim(_PyInterpreterFrame *frame)
{
    return frame->owner == FRAME_OWNED_BY_CSTACK;
}

static inline PyObject *ae_frame_code(_PyInterpreterFrame *frame)
{
    return (PyObject *)frame->f_code;
}

static inline _Py_CODEUNIT *ae_frame_instr(_PyInterpreterFrame *frame)
{
    return frame->prev_instr;
}

static inline PyThreadState *ae_attached_thread_state(void)
{
    /* 3.12: reads the _Py_tss_tstate TLS slot (not exported, so call the function); NULL while
     * this thread is detached, i.e. has released the GIL. */
    return _PyThreadState_UncheckedGet();
}

static inline int ae_finalizing(void)
{
    return _Py_IsFinalizing();
}
