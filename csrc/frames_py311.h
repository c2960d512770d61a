/* frames_py311.h - CPython 3.11 frame layout (internal/pycore_frame.h).
 *   innermost:  tstate->cframe->current_frame
 *   code:       f_code (always a code object)
 *   position:   prev_instr, the code unit before the next instruction (may be a CACHE entry;
 *               PyCode_Addr2Line maps caches to their instruction's line)
 *   C entries:  is_entry marks the first frame of a C-level eval call; there are no shim frames.
 */
static inline _PyInterpreterFrame *ae_top_frame(PyThreadState *tstate)
{
    _PyCFrame *cframe = tstate->cframe;
    return cframe != NULL ? cframe->current_frame : NULL;
}

static inline int ae_frame_is_shim(_PyInterpreterFrame *frame)
{
    (void)frame;
    return 0;
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
    /* 3.11: the GIL holder's tstate (_PyRuntime.gilstate.tstate_current), not necessarily ours. */
    return _PyThreadState_UncheckedGet();
}

static inline int ae_finalizing(void)
{
    return _Py_IsFinalizing();
}
