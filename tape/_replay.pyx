"""The replay interpreter: one loop over a flat instruction list of typed nogil kernels.

Knows nothing about tracers or derivatives: the recorder (``tape.passes.lower``) hands it a
``Program`` (instruction arrays, buffer table, segment layout) and it runs prelude, chunked body
passes and epilogues over contiguous float64 buffers that are allocated once per Program.

Transcendentals call numpy's own SIMD inner loops, taken from the ufunc objects through the ufunc
C API, so they are vectorized and bit-identical to numpy; cheap arithmetic on short arrays runs in
inline C to avoid the loop-dispatch cost (exactly rounded either way, so results do not change).
"""
cimport cython
cimport numpy as cnp
from libc.math cimport erf, erfc, lgamma, fabs, isnan, NAN, INFINITY
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport dgemm
from cython.parallel cimport prange, threadid
cimport openmp

import numpy as np

cnp.import_array()
cnp.import_ufunc()

cdef extern from "_kernels.h" nogil:
    int tape_binary_inline(int fn, double* out, const double* a, long sa, const double* b,
                           long sb, long n)
    int tape_unary_inline(int fn, double* out, const double* a, long n)
    void tape_where(double* out, const double* c, long sc, const double* a, long sa,
                    const double* b, long sb, long n)
    void tape_muladd(double* out, const double* a, long sa, const double* b, long sb,
                     const double* c, long sc, long n)
    double tape_dot_block(const double* a, const double* b, long n)
    void tape_polyval(double* out, const double* c, const double* x, const int64_t* idx,
                      long n, long d)
    enum:
        TK_ADD, TK_SUB, TK_MUL, TK_DIV, TK_POW, TK_MAX, TK_MIN, TK_GT, TK_GE, TK_LT, TK_LE,
        TK_EQ, TK_NE, TK_LOGADDEXP, TK_FLOOR_LOG, TK_FLOOR_RECIP, TK_NEG, TK_SQUARE, TK_ABS,
        TK_RECIP

cdef extern from "_erf.h" nogil:
    void tape_erf_array(double* out, const double* x, long n)
    void tape_erfc_array(double* out, const double* x, long n)

cdef extern from "_special.h" nogil:
    double tape_digamma(double x)
    double tape_trigamma(double x)
    double tape_sigmoid(double x)
    double tape_polygamma(int n, double x)

ctypedef void (*loopfn)(char **args, const cnp.npy_intp *dims, const cnp.npy_intp *steps,
                        void *data) noexcept nogil

# ---------------------------------------------------------------------------------------------
# The op-code table shared with Python (read there through KINDS, UNARY, BINARY, FIELDS).
cdef enum:
    K_UNARY = 0
    K_BINARY = 1
    K_WHERE = 2
    K_SUM_EVENTS = 3
    K_MAX_EVENTS = 4
    K_SUM_SEG = 5
    K_MAX_SEG = 6
    K_GATHER = 7
    K_SCATTER_ADD = 8
    K_COPY = 9
    K_MATMUL = 10
    K_DOT_EVENTS = 11
    K_POLYGAMMA = 12
    K_MULADD = 13
    K_SPMV = 14
    K_SCATTER_PROD = 15
    K_POLYVAL = 16
    K_CONCAT = 17

cdef enum:
    U_NEG = 0
    U_EXP = 1
    U_LOG = 2
    U_LOG1P = 3
    U_EXPM1 = 4
    U_SQRT = 5
    U_SQUARE = 6
    U_ABS = 7
    U_SIGN = 8
    U_SIN = 9
    U_COS = 10
    U_TANH = 11
    U_SIGMOID = 12
    U_ERF = 13
    U_ERFC = 14
    U_LGAMMA = 15
    U_DIGAMMA = 16
    U_TRIGAMMA = 17
    U_RECIP = 18
    U_ARCTAN = 19
    U_LOG_NDTR = 20
    N_UNARY = 21

cdef enum:
    B_ADD = 0
    B_SUB = 1
    B_MUL = 2
    B_DIV = 3
    B_POW = 4
    B_MAX = 5
    B_MIN = 6
    B_GT = 7
    B_GE = 8
    B_LT = 9
    B_LE = 10
    B_EQ = 11
    B_NE = 12
    B_LOGADDEXP = 13
    B_FLOOR_LOG = 14
    B_FLOOR_RECIP = 15
    N_BINARY = 16

# Instruction layout: NF int64 fields per instruction.
cdef enum:
    F_KIND = 0
    F_FN = 1
    F_OUT = 2
    F_A = 3
    F_B = 4
    F_C = 5
    F_N = 6
    F_FLAGS = 7
    F_X1 = 8
    F_X2 = 9
    NF = 10

# Flags: bit 0 the output has the event axis, bit 1 input a has it; then 2 bits of mode per input.
cdef enum:
    FL_EVENT = 1
    FL_EVENT_IN = 2
    M_FULL = 0
    M_SCALAR = 1
    M_ROW = 2

KINDS = dict(unary=K_UNARY, binary=K_BINARY, where=K_WHERE, sum_events=K_SUM_EVENTS,
             max_events=K_MAX_EVENTS, sum_seg=K_SUM_SEG, max_seg=K_MAX_SEG, gather=K_GATHER,
             scatter_add=K_SCATTER_ADD, copy=K_COPY, matmul=K_MATMUL,
             dot_events=K_DOT_EVENTS, polygamma=K_POLYGAMMA,
             muladd=K_MULADD, spmv=K_SPMV, scatter_prod=K_SCATTER_PROD,
             polyval=K_POLYVAL, concat=K_CONCAT)
UNARY = dict(neg=U_NEG, exp=U_EXP, log=U_LOG, log1p=U_LOG1P, expm1=U_EXPM1, sqrt=U_SQRT,
             square=U_SQUARE, abs=U_ABS, sign=U_SIGN, sin=U_SIN, cos=U_COS, tanh=U_TANH,
             sigmoid=U_SIGMOID, erf=U_ERF, erfc=U_ERFC, lgamma=U_LGAMMA, digamma=U_DIGAMMA,
             trigamma=U_TRIGAMMA, reciprocal=U_RECIP, arctan=U_ARCTAN, log_ndtr=U_LOG_NDTR)
BINARY = dict(add=B_ADD, sub=B_SUB, mul=B_MUL, div=B_DIV, pow=B_POW, maximum=B_MAX,
              minimum=B_MIN, gt=B_GT, ge=B_GE, lt=B_LT, le=B_LE, eq=B_EQ, ne=B_NE,
              logaddexp=B_LOGADDEXP, floor_log=B_FLOOR_LOG, floor_recip=B_FLOOR_RECIP)
FIELDS = dict(kind=F_KIND, fn=F_FN, out=F_OUT, a=F_A, b=F_B, c=F_C, n=F_N, flags=F_FLAGS,
              x1=F_X1, x2=F_X2, nfields=NF)
MODES = dict(full=M_FULL, scalar=M_SCALAR, row=M_ROW)
# Padding (in doubles) after each row-slot of a chunk arena (Program._ensure_threads).
ARENA_ROW_PAD = 24
FLAGS = dict(event=FL_EVENT, event_in=FL_EVENT_IN)

# Padding (in doubles) between the row-slots of a chunk arena (see Program._ensure_threads);
# ARENA_ROW_PAD tells Python.
DEF ROW_PAD = 24

# Below this many elements, arithmetic runs inline instead of through numpy's loop dispatch.
DEF SMALL = 32

# ---------------------------------------------------------------------------------------------
# numpy's float64 inner loops, looked up once at import.
cdef loopfn U_LOOP[N_UNARY]
cdef void* U_DATA[N_UNARY]
cdef loopfn B_LOOP[N_BINARY]
cdef void* B_DATA[N_BINARY]


cdef int _find_loop(cnp.ufunc u) except -2:
    cdef int i, j, nargs = u.nin + u.nout
    cdef bint ok
    for i in range(u.ntypes):
        ok = True
        for j in range(nargs):
            if u.types[i * nargs + j] != cnp.NPY_DOUBLE:
                ok = False
        if ok:
            return i
    return -1


cdef void _take_loop(object ufunc, loopfn* table, void** data, int slot) except *:
    cdef cnp.ufunc u = ufunc
    cdef int i = _find_loop(u)
    if i < 0:
        raise RuntimeError(f"ufunc {u.__name__} has no float64 inner loop")
    table[slot] = <loopfn>u.functions[i]
    data[slot] = u.data[i]


def _init_loops():
    cdef int i
    for i in range(N_UNARY):
        U_LOOP[i] = NULL
    for i in range(N_BINARY):
        B_LOOP[i] = NULL
    for name, u in dict(exp=np.exp, log=np.log, log1p=np.log1p, expm1=np.expm1, sqrt=np.sqrt,
                        sin=np.sin, cos=np.cos, tanh=np.tanh, neg=np.negative,
                        square=np.square, abs=np.absolute, reciprocal=np.reciprocal,
                        arctan=np.arctan).items():
        _take_loop(u, U_LOOP, U_DATA, UNARY[name])
    # scipy's log of the normal CDF (asymptotic in the lower tail), a ufunc like numpy's
    from scipy import special
    _take_loop(special.log_ndtr, U_LOOP, U_DATA, UNARY["log_ndtr"])
    for name, u in dict(add=np.add, sub=np.subtract, mul=np.multiply, div=np.divide,
                        pow=np.power, maximum=np.maximum, minimum=np.minimum,
                        logaddexp=np.logaddexp).items():
        _take_loop(u, B_LOOP, B_DATA, BINARY[name])


_init_loops()

# The inline kernels of _kernels.h use the same op codes as the tables above.
assert (TK_ADD, TK_SUB, TK_MUL, TK_DIV, TK_POW, TK_MAX, TK_MIN, TK_GT, TK_GE, TK_LT, TK_LE,
        TK_EQ, TK_NE, TK_LOGADDEXP, TK_FLOOR_LOG, TK_FLOOR_RECIP) == (
            B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_MIN, B_GT, B_GE, B_LT, B_LE, B_EQ, B_NE,
            B_LOGADDEXP, B_FLOOR_LOG, B_FLOOR_RECIP)
assert (TK_NEG, TK_SQUARE, TK_ABS, TK_RECIP) == (U_NEG, U_SQUARE, U_ABS, U_RECIP)


# ---------------------------------------------------------------------------------------------
# Elementwise kernels.
cdef inline double _sign(double x) noexcept nogil:
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x  # 0 -> 0, nan -> nan


cdef void unary(int fn, double* out, const double* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef char* args[2]
    cdef cnp.npy_intp steps[2]
    cdef cnp.npy_intp dim = n
    if tape_unary_inline(fn, out, a, n) == 0:
        return
    cdef bint vector = U_LOOP[fn] != NULL and (n >= SMALL or fn == U_EXP or fn == U_LOG
                                               or fn == U_LOG1P or fn == U_EXPM1
                                               or fn == U_SIN or fn == U_COS or fn == U_TANH
                                               or fn == U_ARCTAN or fn == U_LOG_NDTR)
    if vector:
        args[0] = <char*>a
        args[1] = <char*>out
        steps[0] = 8
        steps[1] = 8
        U_LOOP[fn](args, &dim, steps, U_DATA[fn])
        return
    if fn == U_SQRT:
        for i in range(n):
            out[i] = a[i] ** 0.5 if a[i] >= 0 else NAN
    elif fn == U_SIGN:
        for i in range(n):
            out[i] = _sign(a[i])
    elif fn == U_SIGMOID:
        for i in range(n):
            out[i] = tape_sigmoid(a[i])
    elif fn == U_ERF:
        tape_erf_array(out, a, n)
    elif fn == U_ERFC:
        tape_erfc_array(out, a, n)
    elif fn == U_LGAMMA:
        for i in range(n):
            out[i] = lgamma(a[i])
    elif fn == U_DIGAMMA:
        for i in range(n):
            out[i] = tape_digamma(a[i])
    elif fn == U_TRIGAMMA:
        for i in range(n):
            out[i] = tape_trigamma(a[i])


cdef void binary(int fn, double* out, const double* a, Py_ssize_t sa, const double* b,
                 Py_ssize_t sb, Py_ssize_t n) noexcept nogil:
    """out[i] = a[i*sa] (op) b[i*sb]; sa, sb are 1 (full) or 0 (a broadcast scalar)."""
    cdef Py_ssize_t i
    cdef char* args[3]
    cdef cnp.npy_intp steps[3]
    cdef cnp.npy_intp dim = n
    cdef double x, y
    if tape_binary_inline(fn, out, a, sa, b, sb, n) == 0:
        return
    if fn == B_FLOOR_LOG:
        # log(max(a, b)): the maximum inline, then numpy's SIMD log in place
        tape_binary_inline(B_MAX, out, a, sa, b, sb, n)
        unary(U_LOG, out, out, n)
        return
    if B_LOOP[fn] != NULL:
        # numpy's SIMD loops for the ops with no inline kernel
        args[0] = <char*>a
        args[1] = <char*>b
        args[2] = <char*>out
        steps[0] = 8 * sa
        steps[1] = 8 * sb
        steps[2] = 8
        B_LOOP[fn](args, &dim, steps, B_DATA[fn])


cdef inline void where(double* out, const double* c, Py_ssize_t sc, const double* a,
                       Py_ssize_t sa, const double* b, Py_ssize_t sb,
                       Py_ssize_t n) noexcept nogil:
    tape_where(out, c, sc, a, sa, b, sb, n)


# ---------------------------------------------------------------------------------------------
# Reductions.
cdef double pairwise_sum(const double* a, Py_ssize_t n) noexcept nogil:
    """Pairwise summation with an 8-way unrolled base case: error O(log n) ulp, vectorizable."""
    cdef Py_ssize_t i, half
    cdef double r0, r1, r2, r3, r4, r5, r6, r7, s
    if n < 8:
        s = 0.0
        for i in range(n):
            s += a[i]
        return s
    if n <= 128:
        r0 = a[0]; r1 = a[1]; r2 = a[2]; r3 = a[3]
        r4 = a[4]; r5 = a[5]; r6 = a[6]; r7 = a[7]
        i = 8
        while i + 8 <= n:
            r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3]
            r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7]
            i += 8
        s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            s += a[i]
            i += 1
        return s
    half = (n // 2) & ~(<Py_ssize_t>7)
    return pairwise_sum(a, half) + pairwise_sum(a + half, n - half)


cdef double pairwise_dot(const double* a, const double* b, Py_ssize_t n,
                         Py_ssize_t s) noexcept nogil:
    """Pairwise sum of a[i s] * b[i s], i < n: an event sum of a product without its temporary."""
    cdef Py_ssize_t i, half
    cdef double r0, r1, r2, r3, t
    if s == 1 and n <= 128:
        return tape_dot_block(a, b, n)
    if n <= 16:
        t = 0.0
        for i in range(n):
            t += a[i * s] * b[i * s]
        return t
    half = n // 2
    if s == 1:
        half = half & ~(<Py_ssize_t>7)
    return pairwise_dot(a, b, half, s) + pairwise_dot(a + half * s, b + half * s, n - half, s)


cdef inline void gather_sum(double* out, const double* a, const int64_t* ptr,
                            const int64_t* items, Py_ssize_t n) noexcept nogil:
    """out[r] = sum of a[items[k]] for k in ptr[r]:ptr[r+1] (a scatter-add by output)."""
    cdef Py_ssize_t r, k, e
    cdef double s0, s1
    for r in range(n):
        k = ptr[r]
        e = ptr[r + 1]
        s0 = 0.0
        s1 = 0.0
        while k + 2 <= e:
            s0 += a[items[k]]
            s1 += a[items[k + 1]]
            k += 2
        if k < e:
            s0 += a[items[k]]
        out[r] = s0 + s1


cdef inline void prod_runs(double* out, const double* a, const int64_t* idx,
                           Py_ssize_t w) noexcept nogil:
    """out[idx[j]] *= a[j]; a run of equal indices is multiplied together first."""
    cdef Py_ssize_t j = 0
    cdef int64_t k
    cdef double p
    while j < w:
        k = idx[j]
        p = a[j]
        j += 1
        while j < w and idx[j] == k:
            p *= a[j]
            j += 1
        out[k] *= p


cdef inline double _row_dot(const double* v, const double* x, const int64_t* cols, Py_ssize_t k,
                           Py_ssize_t e) noexcept nogil:
    cdef double s0 = 0.0, s1 = 0.0
    while k + 2 <= e:
        s0 += v[k] * x[cols[k]]
        s1 += v[k + 1] * x[cols[k + 1]]
        k += 2
    if k < e:
        s0 += v[k] * x[cols[k]]
    return s0 + s1


cdef inline void spmv_rows(double* out, const double* v, const double* x, const int64_t* ptr,
                           const int64_t* cols, Py_ssize_t n) noexcept nogil:
    """out[i] = sum of v[k] x[cols[k]] over row i's non-zeros (CSR). Two rows at a time, two
    partial sums each: short rows (typical of binned models) keep four independent chains."""
    cdef Py_ssize_t i = 0, k, e, q, f
    cdef double s0, s1, t0, t1
    while i + 2 <= n:
        k = ptr[i]
        e = ptr[i + 1]
        q = e
        f = ptr[i + 2]
        s0 = 0.0
        s1 = 0.0
        t0 = 0.0
        t1 = 0.0
        while k + 2 <= e and q + 2 <= f:
            s0 += v[k] * x[cols[k]]
            s1 += v[k + 1] * x[cols[k + 1]]
            t0 += v[q] * x[cols[q]]
            t1 += v[q + 1] * x[cols[q + 1]]
            k += 2
            q += 2
        out[i] = (s0 + s1) + _row_dot(v, x, cols, k, e)
        out[i + 1] = (t0 + t1) + _row_dot(v, x, cols, q, f)
        i += 2
    if i < n:
        out[i] = _row_dot(v, x, cols, ptr[i], ptr[i + 1])


cdef double pairwise_sum_strided(const double* a, Py_ssize_t n, Py_ssize_t s) noexcept nogil:
    """Pairwise sum of a[0], a[s], ..., a[(n-1)s]: one column of an (n, s) block of rows."""
    cdef Py_ssize_t i, half
    cdef double t
    if n <= 16:
        t = 0.0
        for i in range(n):
            t += a[i * s]
        return t
    half = n // 2
    return pairwise_sum_strided(a, half, s) + pairwise_sum_strided(a + half * s, n - half, s)


cdef inline void neumaier_add(double* acc, double* comp, double x) noexcept nogil:
    """Compensated accumulation of x into (acc, comp): the chunk partials of an event sum."""
    cdef double s = acc[0] + x
    if not (s - s == 0.0):
        # an infinite (or NaN) sum: no compensation (inf - inf would turn it into NaN)
        acc[0] = s
        return
    if fabs(acc[0]) >= fabs(x):
        comp[0] += (acc[0] - s) + x
    else:
        comp[0] += (x - s) + acc[0]
    acc[0] = s


cdef inline double max_of(const double* a, Py_ssize_t n, double m) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if isnan(a[i]):
            return NAN
        if a[i] > m:
            m = a[i]
    return m


# ---------------------------------------------------------------------------------------------
# The interpreter.
cdef inline const double* _row(const double* p, int mode, Py_ssize_t r, Py_ssize_t w) noexcept nogil:
    return p + r * w if mode == M_FULL else p


cdef inline Py_ssize_t _stride(int mode) noexcept nogil:
    return 0 if mode == M_SCALAR else 1


cdef void exec_block(const int64_t* code, Py_ssize_t n_ins, double** ptrs, const int64_t* iarena,
                     Py_ssize_t rows) noexcept nogil:
    """Run n_ins instructions; event-axis operands hold `rows` rows of the current chunk."""
    cdef Py_ssize_t k, r, j, n, total, w, m
    cdef const int64_t* I
    cdef int kind, fn, flags, ma, mb, mc
    cdef double* out
    cdef const double* a
    cdef const double* b
    cdef const double* c
    cdef const int64_t* idx
    cdef double* comp
    cdef char transa, transb
    cdef int bm, bn, bk, lda, ldb, ldc
    cdef double one = 1.0, zero = 0.0
    for k in range(n_ins):
        I = code + k * NF
        kind = <int>I[F_KIND]
        fn = <int>I[F_FN]
        flags = <int>I[F_FLAGS]
        n = I[F_N]
        total = n * rows if flags & FL_EVENT else n
        out = ptrs[I[F_OUT]]
        a = ptrs[I[F_A]]
        ma = (flags >> 2) & 3
        mb = (flags >> 4) & 3
        mc = (flags >> 6) & 3
        if kind == K_UNARY:
            unary(fn, out, a, total)
        elif kind == K_BINARY:
            b = ptrs[I[F_B]]
            if ma == M_ROW or mb == M_ROW:
                for r in range(rows):
                    binary(fn, out + r * n, _row(a, ma, r, n), _stride(ma),
                           _row(b, mb, r, n), _stride(mb), n)
            else:
                binary(fn, out, a, _stride(ma), b, _stride(mb), total)
        elif kind == K_WHERE:
            b = ptrs[I[F_B]]
            c = ptrs[I[F_C]]
            if ma == M_ROW or mb == M_ROW or mc == M_ROW:
                for r in range(rows):
                    where(out + r * n, _row(a, ma, r, n), _stride(ma), _row(b, mb, r, n),
                          _stride(mb), _row(c, mc, r, n), _stride(mc), n)
            else:
                where(out, a, _stride(ma), b, _stride(mb), c, _stride(mc), total)
        elif kind == K_MULADD:
            b = ptrs[I[F_B]]
            c = ptrs[I[F_C]]
            if ma == M_ROW or mb == M_ROW or mc == M_ROW:
                for r in range(rows):
                    tape_muladd(out + r * n, _row(a, ma, r, n), _stride(ma), _row(b, mb, r, n),
                                _stride(mb), _row(c, mc, r, n), _stride(mc), n)
            else:
                tape_muladd(out, a, _stride(ma), b, _stride(mb), c, _stride(mc), total)
        elif kind == K_SUM_EVENTS:
            # this chunk's partial sums; the driver combines chunks in a fixed order
            if n == 1:
                out[0] = pairwise_sum(a, rows)
            else:
                for j in range(n):
                    out[j] = pairwise_sum_strided(a + j, rows, n)
        elif kind == K_POLYGAMMA:
            for j in range(total):
                out[j] = tape_polygamma(<int>I[F_X1], a[j])
        elif kind == K_DOT_EVENTS:
            b = ptrs[I[F_B]]
            for j in range(n):
                out[j] = pairwise_dot(a + j, b + j, rows, n)
        elif kind == K_MAX_EVENTS:
            for j in range(n):
                out[j] = -INFINITY
            for r in range(rows):
                for j in range(n):
                    if isnan(a[r * n + j]) or a[r * n + j] > out[j]:
                        out[j] = a[r * n + j]
        elif kind == K_SUM_SEG:
            m = I[F_X1]
            for j in range(total):
                out[j] = pairwise_sum(a + j * m, m)
        elif kind == K_MAX_SEG:
            m = I[F_X1]
            for j in range(total):
                out[j] = max_of(a + j * m, m, -INFINITY)
        elif kind == K_GATHER:
            idx = iarena + I[F_X1]
            w = I[F_X2]
            if flags & FL_EVENT and flags & FL_EVENT_IN:
                for r in range(rows):
                    for j in range(n):
                        out[r * n + j] = a[r * w + idx[j]]
            else:
                for j in range(n):
                    out[j] = a[idx[j]]
                if flags & FL_EVENT:
                    for r in range(1, rows):
                        memcpy(out + r * n, out, n * sizeof(double))
        elif kind == K_SCATTER_ADD:
            idx = iarena + I[F_X1]
            w = I[F_X2]
            if fn == 1:      # CSR: n + 1 row pointers, then the items of each output
                for r in range(rows if flags & FL_EVENT else 1):
                    gather_sum(out + r * n, a + r * w, idx, idx + n + 1, n)
            else:
                memset(out, 0, total * sizeof(double))
                for r in range(rows if flags & FL_EVENT else 1):
                    for j in range(w):
                        out[r * n + idx[j]] += a[r * w + j]
        elif kind == K_SCATTER_PROD:
            idx = iarena + I[F_X1]
            w = I[F_X2]
            for j in range(total):
                out[j] = 1.0
            for r in range(rows if flags & FL_EVENT else 1):
                prod_runs(out + r * n, a + r * w, idx, w)
        elif kind == K_CONCAT:
            # X2 pieces, each (buffer, width) in the index arena at X1, copied one after another
            idx = iarena + I[F_X1]
            for r in range(rows if flags & FL_EVENT else 1):
                m = 0
                for j in range(I[F_X2]):
                    w = idx[2 * j + 1]
                    memcpy(out + r * n + m, ptrs[idx[2 * j]] + (r * w if flags & FL_EVENT else 0),
                           w * sizeof(double))
                    m += w
        elif kind == K_POLYVAL:
            # a: coefficients (X1 rows of n), b: x (rows of width C), taken at the indices at X2
            # (X2 < 0: elementwise)
            b = ptrs[I[F_B]]
            w = I[F_C]
            idx = iarena + I[F_X2] if I[F_X2] >= 0 else NULL
            for r in range(rows if flags & FL_EVENT else 1):
                tape_polyval(out + r * n, a, b + r * w, idx, n, I[F_X1])
        elif kind == K_SPMV:
            # a: the non-zeros, b: x (rows of width fn when it has the event axis)
            b = ptrs[I[F_B]]
            w = fn
            for r in range(rows if flags & FL_EVENT else 1):
                spmv_rows(out + r * n, a, b + r * w, iarena + I[F_X1], iarena + I[F_X2], n)
        elif kind == K_COPY:
            memcpy(out, a, total * sizeof(double))
        elif kind == K_MATMUL:
            # out (M, N) = a (M, K) @ b (K, N), row-major; M = rows when a has the event axis.
            # In column-major terms: out^T (N, M) = b^T (N, K) @ a^T (K, M).
            b = ptrs[I[F_B]]
            bk = <int>I[F_X1]
            bn = <int>n
            bm = <int>(rows * I[F_X2] if flags & FL_EVENT else I[F_X2])
            if bm > 0 and bn > 0:
                if bk == 0:
                    memset(out, 0, bm * bn * sizeof(double))
                else:
                    transa = b'N'
                    transb = b'N'
                    lda = bn
                    ldb = bk
                    ldc = bn
                    dgemm(&transa, &transb, &bn, &bm, &bk, &one, <double*>b, &lda, <double*>a,
                          &ldb, &zero, out, &ldc)


# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Threads: chunks of one body pass are replayed in parallel, each thread with its own chunk
# buffers; every chunk leaves its partial reductions in a table that is combined in chunk order,
# so results do not depend on the number of threads.
cdef int _num_threads = 1
# Fewer events than this replay on one thread: waking threads would cost more than they save.
cdef Py_ssize_t _min_parallel_events = 65536


def set_num_threads(int n):
    """Set the number of threads that replay chunks (1 = serial)."""
    global _num_threads
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    _num_threads = n


def get_num_threads():
    return _num_threads


def set_min_parallel_events(Py_ssize_t n):
    """Tapes over fewer events than `n` replay serially (results are the same either way)."""
    global _min_parallel_events
    _min_parallel_events = max(0, n)


def max_threads():
    """What OpenMP offers on this machine."""
    return openmp.omp_get_max_threads()


cdef class Program:
    """A lowered tape: instruction blocks, buffer table and segment layout, ready to replay.

    Built from the spec of ``tape.passes.lower``; owns its buffers (allocated once, per thread
    for the chunk buffers) and a reference to the data arrays. Everything ``run`` needs is kept
    in C arrays so that a call costs little more than its kernels. Not safe for concurrent
    calls: ``tape.Function`` serializes them.
    """
    cdef double** ptrs            # buffer table of thread 0 (and of the prelude/epilogues)
    cdef double*** tptrs          # one buffer table per thread
    cdef list arenas              # one chunk arena per thread
    cdef int n_threads_alloc
    cdef Py_ssize_t n_bufs
    cdef object small, iarena, code, data, keep
    cdef double* small_p
    cdef const int64_t* code_p
    cdef const int64_t* iarena_p
    cdef Py_ssize_t chunk_rows, n_events, n_params, n_out, nev_off, event_row_size
    cdef Py_ssize_t pre0, pre1, n_pass, n_inputs, n_outputs, n_data, n_chunks, n_chunks_alloc
    cdef object data_index
    cdef Py_ssize_t* passes      # 4 per pass: body start, stop, epilogue start, stop
    cdef Py_ssize_t* red_start   # per pass: first reduction in red (n_pass + 1 entries)
    cdef Py_ssize_t* red         # 4 per reduction: partial buffer, result offset, width, is_max
    cdef Py_ssize_t* red_col     # per pass: total width of its reductions
    cdef double* table           # partials: n_chunks x (max total width)
    cdef Py_ssize_t table_width
    cdef Py_ssize_t* inputs      # 2 per input: offset, size
    cdef Py_ssize_t* outputs     # 2 per output: offset, size
    cdef Py_ssize_t* dbuf
    cdef Py_ssize_t* dwidth
    cdef double** dbase
    cdef object bufkind
    cdef Py_ssize_t stride, block, n_sel   # subsampling: every stride-th block of rows
    cdef Py_ssize_t* sel                    # the chunks replayed (all, unless subsampled)
    cdef double scale                       # n_events / rows in the replayed chunks

    def __cinit__(self):
        self.ptrs = NULL
        self.tptrs = NULL
        self.n_threads_alloc = 0
        self.passes = NULL
        self.red_start = NULL
        self.red = NULL
        self.red_col = NULL
        self.table = NULL
        self.inputs = NULL
        self.outputs = NULL
        self.dbuf = NULL
        self.dwidth = NULL
        self.dbase = NULL
        self.sel = NULL
        self.stride = 1
        self.block = 1
        self.scale = 1.0

    def __init__(self, dict spec, list data, Py_ssize_t n_events, Py_ssize_t chunk_rows):
        """spec keys: small_init, event_row_size, bufs (kind, offset, width), code (int64
        (k, NF)), iarena, prelude (start, stop), passes [(start, stop, start2, stop2,
        reductions [(partial buffer, result offset, width, is_max)])], inputs [(offset, size)],
        nev_off, outputs [(offset, size)], data_bufs [(buf, data index)]."""
        cdef Py_ssize_t i, j, q, kind, off, tw
        cdef cnp.ndarray arr
        self.chunk_rows = max(1, chunk_rows)
        self.n_events = n_events
        self.n_chunks = (n_events + self.chunk_rows - 1) // self.chunk_rows
        self.event_row_size = spec["event_row_size"]
        init = np.asarray(spec["small_init"], dtype=np.float64)
        buf = np.zeros(init.size + 8)
        start = (-(buf.ctypes.data // 8)) % 8                  # 64-byte (cache line) aligned
        self.small = buf[start:start + init.size]
        self.small[:] = init
        self.code = np.ascontiguousarray(spec["code"], dtype=np.int64).reshape(-1, NF)
        self.iarena = np.ascontiguousarray(spec["iarena"], dtype=np.int64)
        if self.iarena.size == 0:
            self.iarena = np.zeros(1, dtype=np.int64)
        self.code_p = <const int64_t*>cnp.PyArray_DATA(self.code)
        self.iarena_p = <const int64_t*>cnp.PyArray_DATA(self.iarena)
        self.small_p = <double*>cnp.PyArray_DATA(self.small)
        bufs = spec["bufs"]
        self.keep = bufs
        self.n_bufs = len(bufs)
        self.bufkind = [(int(k), int(o)) for k, o, _w in bufs]
        self.arenas = []
        self._ensure_threads(1)
        self.ptrs = self.tptrs[0]
        self.pre0, self.pre1 = spec["prelude"]
        plist = spec["passes"]
        self.n_pass = len(plist)
        self.passes = <Py_ssize_t*>_alloc((4 * self.n_pass + 1) * sizeof(Py_ssize_t))
        self.red_start = <Py_ssize_t*>_alloc((self.n_pass + 1) * sizeof(Py_ssize_t))
        self.red_col = <Py_ssize_t*>_alloc((self.n_pass + 1) * sizeof(Py_ssize_t))
        n_red = sum(len(p[4]) for p in plist)
        self.red = <Py_ssize_t*>_alloc((4 * n_red + 1) * sizeof(Py_ssize_t))
        q = 0
        self.table_width = 1
        for i in range(self.n_pass):
            for j in range(4):
                self.passes[4 * i + j] = plist[i][j]
            self.red_start[i] = q
            tw = 0
            for pbuf, roff, w, is_max in plist[i][4]:
                self.red[4 * q] = pbuf
                self.red[4 * q + 1] = roff
                self.red[4 * q + 2] = w
                self.red[4 * q + 3] = is_max
                tw += w
                q += 1
            self.red_col[i] = tw
            self.table_width = max(self.table_width, tw)
        self.red_start[self.n_pass] = q
        self.table = <double*>_alloc((max(1, self.n_chunks) * self.table_width) * sizeof(double))
        self.n_chunks_alloc = self.n_chunks
        ins = spec["inputs"]
        self.n_inputs = len(ins)
        self.inputs = <Py_ssize_t*>_alloc((2 * self.n_inputs + 1) * sizeof(Py_ssize_t))
        self.n_params = 0
        for i in range(self.n_inputs):
            self.inputs[2 * i] = ins[i][0]
            self.inputs[2 * i + 1] = ins[i][1]
            self.n_params += ins[i][1]
        outs = spec["outputs"]
        self.n_outputs = len(outs)
        self.outputs = <Py_ssize_t*>_alloc((2 * self.n_outputs + 1) * sizeof(Py_ssize_t))
        self.n_out = 0
        for i in range(self.n_outputs):
            self.outputs[2 * i] = outs[i][0]
            self.outputs[2 * i + 1] = outs[i][1]
            self.n_out += outs[i][1]
        self.nev_off = spec["nev_off"]
        dlist = spec["data_bufs"]
        self.n_data = len(dlist)
        self.data_index = [d for _, d in dlist]
        self.data = [data[d] for _, d in dlist]
        self.dbuf = <Py_ssize_t*>_alloc((self.n_data + 1) * sizeof(Py_ssize_t))
        self.dwidth = <Py_ssize_t*>_alloc((self.n_data + 1) * sizeof(Py_ssize_t))
        self.dbase = <double**>_alloc((self.n_data + 1) * sizeof(double*))
        for i in range(self.n_data):
            arr = self.data[i]
            if arr.dtype != np.float64 or not arr.flags.c_contiguous:
                raise ValueError("data arrays must be C-contiguous float64")
            if arr.shape[0] != n_events:
                raise ValueError("data arrays must all have n_events rows")
            self.dbuf[i] = dlist[i][0]
            self.dwidth[i] = bufs[dlist[i][0]][2]
            self.dbase[i] = <double*>cnp.PyArray_DATA(arr)
        self._select()

    def set_subsample(self, Py_ssize_t stride, Py_ssize_t block):
        """Replay only the chunks in every `stride`-th block of `block` rows (the event sums
        scaled by n_events over the rows replayed); stride 1 replays every chunk. `block` must
        be a multiple of the chunk rows, so that each chunk lies in one block."""
        if stride < 1 or block < 1 or block % self.chunk_rows:
            raise ValueError(f"subsample stride {stride} / block {block} do not fit chunks of "
                             f"{self.chunk_rows} rows")
        self.stride, self.block = stride, block
        self._select()

    cdef int _select(self) except -1:
        cdef Py_ssize_t c, k = 0, rows = 0
        free(self.sel)
        self.sel = NULL
        self.sel = <Py_ssize_t*>_alloc((self.n_chunks + 1) * sizeof(Py_ssize_t))
        for c in range(self.n_chunks):
            if self.stride == 1 or ((c * self.chunk_rows) // self.block) % self.stride == 0:
                self.sel[k] = c
                rows += min(self.chunk_rows, self.n_events - c * self.chunk_rows)
                k += 1
        self.n_sel = k
        self.scale = 1.0 if rows == self.n_events else <double>self.n_events / <double>rows
        return 0

    @property
    def replayed_events(self):
        """Number of events that one replay visits (all of them unless subsampled)."""
        cdef Py_ssize_t k, rows = 0
        for k in range(self.n_sel):
            rows += min(self.chunk_rows, self.n_events - self.sel[k] * self.chunk_rows)
        return rows

    def set_data(self, list data, Py_ssize_t n_events):
        """Replay over other data arrays (same names and row widths): no new program needed."""
        cdef Py_ssize_t i, n_chunks
        cdef cnp.ndarray arr
        arrays = [data[d] for d in self.data_index]
        for arr in arrays:
            if arr.dtype != np.float64 or not arr.flags.c_contiguous:
                raise ValueError("data arrays must be C-contiguous float64")
            if arr.shape[0] != n_events:
                raise ValueError("data arrays must all have n_events rows")
        n_chunks = (n_events + self.chunk_rows - 1) // self.chunk_rows
        if n_chunks > self.n_chunks_alloc:
            free(self.table)
            self.table = NULL
            self.table = <double*>_alloc((max(1, n_chunks) * self.table_width) * sizeof(double))
            self.n_chunks_alloc = n_chunks
        self.data = arrays
        for i in range(self.n_data):
            self.dbase[i] = <double*>cnp.PyArray_DATA(arrays[i])
        self.n_events = n_events
        self.n_chunks = n_chunks
        self._select()

    cdef int _ensure_threads(self, int n) except -1:
        """Allocate chunk buffers and a buffer table for each of `n` threads."""
        cdef int t
        cdef Py_ssize_t i, kind, off
        cdef double* chunk_p
        cdef double** tab
        if n <= self.n_threads_alloc:
            return 0
        cdef double*** grown = <double***>_alloc(n * sizeof(double**))
        for t in range(self.n_threads_alloc):
            grown[t] = self.tptrs[t]
        for t in range(self.n_threads_alloc, n):
            grown[t] = NULL
        free(self.tptrs)
        self.tptrs = grown
        for t in range(self.n_threads_alloc, n):
            # each row-slot of the arena is padded by ROW_PAD doubles, so that the event buffers
            # of a chunk do not all start at the same address modulo 4096: reading one buffer
            # while writing another at a multiple of 4 KiB apart stalls loads (4K aliasing)
            arena = np.zeros(max(1, self.event_row_size * (self.chunk_rows + ROW_PAD) + 8),
                             dtype=np.float64)
            self.arenas.append(arena)
            chunk_p = <double*>cnp.PyArray_DATA(arena)
            chunk_p += (64 - (<size_t>chunk_p) % 64) % 64 // 8      # 64-byte (cache line) aligned
            tab = <double**>_alloc(max(1, self.n_bufs) * sizeof(double*))
            for i in range(self.n_bufs):
                kind, off = self.bufkind[i]
                if kind == 0:
                    tab[i] = self.small_p + off
                elif kind == 1:
                    tab[i] = chunk_p + off * (self.chunk_rows + ROW_PAD)
                else:
                    tab[i] = NULL
            self.tptrs[t] = tab
            self.n_threads_alloc = t + 1
        return 0

    def __dealloc__(self):
        cdef int t
        if self.tptrs != NULL:
            for t in range(self.n_threads_alloc):
                free(self.tptrs[t])
            free(self.tptrs)
        free(self.passes)
        free(self.red_start)
        free(self.red)
        free(self.red_col)
        free(self.table)
        free(self.inputs)
        free(self.outputs)
        free(self.dbuf)
        free(self.dwidth)
        free(self.dbase)
        free(self.sel)

    @property
    def chunk_rows(self):
        return self.chunk_rows

    @property
    def n_outputs(self):
        """Total length of the concatenated outputs."""
        return self.n_out

    cdef void _chunk(self, Py_ssize_t pi, Py_ssize_t c, int t) noexcept nogil:
        """Replay body pass `pi` on chunk `c` with thread `t`'s buffers; store its partials."""
        cdef double** tab = self.tptrs[t]
        cdef Py_ssize_t* ps = self.passes + 4 * pi
        cdef Py_ssize_t r0 = c * self.chunk_rows
        cdef Py_ssize_t rows = min(self.chunk_rows, self.n_events - r0)
        cdef Py_ssize_t k, j, col = 0
        cdef Py_ssize_t* rd
        cdef double* row = self.table + c * self.table_width
        for k in range(self.n_data):
            tab[self.dbuf[k]] = self.dbase[k] + r0 * self.dwidth[k]
        exec_block(self.code_p + ps[0] * NF, ps[1] - ps[0], tab, self.iarena_p, rows)
        for k in range(self.red_start[pi], self.red_start[pi + 1]):
            rd = self.red + 4 * k
            for j in range(rd[2]):
                row[col + j] = tab[rd[0]][j]
            col += rd[2]

    cdef void _combine(self, Py_ssize_t pi) noexcept nogil:
        """Reduce the chunk partials of pass `pi` in chunk order (compensated for sums; scaled
        to all events when subsampled)."""
        cdef Py_ssize_t k, j, c, col = 0
        cdef Py_ssize_t* rd
        cdef double acc, comp, m, v
        for k in range(self.red_start[pi], self.red_start[pi + 1]):
            rd = self.red + 4 * k
            for j in range(rd[2]):
                if rd[3]:
                    m = -INFINITY
                    for c in range(self.n_sel):
                        v = self.table[self.sel[c] * self.table_width + col + j]
                        if isnan(v) or v > m:
                            m = v
                    self.small_p[rd[1] + j] = m
                else:
                    acc = 0.0
                    comp = 0.0
                    for c in range(self.n_sel):
                        neumaier_add(&acc, &comp,
                                     self.table[self.sel[c] * self.table_width + col + j])
                    self.small_p[rd[1] + j] = acc + comp
                    if self.scale != 1.0:
                        self.small_p[rd[1] + j] *= self.scale
            col += rd[2]

    cdef void _replay(self, const double* params, int nt) noexcept nogil:
        cdef Py_ssize_t i, k, q, c, off, size
        cdef Py_ssize_t* ps
        q = 0
        for i in range(self.n_inputs):
            off = self.inputs[2 * i]
            size = self.inputs[2 * i + 1]
            for k in range(size):
                self.small_p[off + k] = params[q + k]
            q += size
        self.small_p[self.nev_off] = <double>self.n_events
        exec_block(self.code_p + self.pre0 * NF, self.pre1 - self.pre0, self.ptrs,
                   self.iarena_p, 1)
        for i in range(self.n_pass):
            ps = self.passes + 4 * i
            if nt > 1:
                for c in prange(self.n_sel, schedule="static", num_threads=nt):
                    self._chunk(i, self.sel[c], threadid())
            else:
                for c in range(self.n_sel):
                    self._chunk(i, self.sel[c], 0)
            self._combine(i)
            exec_block(self.code_p + ps[2] * NF, ps[3] - ps[2], self.ptrs, self.iarena_p, 1)

    cdef int _threads(self) except -1:
        cdef int nt = 1
        if self.n_sel > 1 and self.n_sel * self.chunk_rows >= _min_parallel_events:
            nt = min(_num_threads, self.n_sel)
        self._ensure_threads(nt)
        return nt

    @cython.boundscheck(True)
    def run(self, const double[::1] params, double[::1] out):
        """Replay all segments at `params` (the inputs, concatenated); write the outputs,
        concatenated, into `out`."""
        cdef Py_ssize_t i, k, q
        if params.shape[0] != self.n_params:
            raise ValueError(f"expected {self.n_params} input values, got {params.shape[0]}")
        if out.shape[0] != self.n_out:
            raise ValueError(f"output buffer has size {out.shape[0]}, expected {self.n_out}")
        cdef int nt = self._threads()
        with nogil:
            self._replay(&params[0] if self.n_params else NULL, nt)
            q = 0
            for i in range(self.n_outputs):
                for k in range(self.outputs[2 * i + 1]):
                    out[q + k] = self.small_p[self.outputs[2 * i] + k]
                q += self.outputs[2 * i + 1]

    def time_instructions(self, const double[::1] params, int repeat=20):
        """Seconds per instruction of one call (prelude, then each pass with all its chunks and
        its epilogue), for finding what a tape spends its time on: a list of (index, seconds).
        Every chunk is timed, also when the program is subsampled."""
        import time
        cdef Py_ssize_t k, i, c, r
        cdef Py_ssize_t* ps
        cdef double[::1] tmp = np.empty(self.n_out)
        self.run(params, tmp)          # state as after a call: inputs and reductions in place
        out = []
        clock = time.perf_counter
        for k in range(self.pre0, self.pre1):
            t0 = clock()
            for r in range(repeat):
                exec_block(self.code_p + k * NF, 1, self.ptrs, self.iarena_p, 1)
            out.append((k, (clock() - t0) / repeat))
        for i in range(self.n_pass):
            ps = self.passes + 4 * i
            for k in range(ps[0], ps[1]):
                t0 = clock()
                for r in range(repeat):
                    for c in range(self.n_chunks):
                        rows = min(self.chunk_rows, self.n_events - c * self.chunk_rows)
                        for j in range(self.n_data):
                            self.ptrs[self.dbuf[j]] = self.dbase[j] + c * self.chunk_rows * self.dwidth[j]
                        exec_block(self.code_p + k * NF, 1, self.ptrs, self.iarena_p, rows)
                out.append((k, (clock() - t0) / repeat))
            for k in range(ps[2], ps[3]):
                t0 = clock()
                for r in range(repeat):
                    exec_block(self.code_p + k * NF, 1, self.ptrs, self.iarena_p, 1)
                out.append((k, (clock() - t0) / repeat))
        self.run(params, tmp)
        return out

    @cython.boundscheck(True)
    def value(self, const double[::1] params):
        """Replay and return the first output as a float (the fast path of a plain call)."""
        if params.shape[0] != self.n_params:
            raise ValueError(f"expected {self.n_params} input values, got {params.shape[0]}")
        cdef int nt = self._threads()
        with nogil:
            self._replay(&params[0] if self.n_params else NULL, nt)
        return self.small_p[self.outputs[0]]


cdef void* _alloc(size_t n) except NULL:
    cdef void* p = malloc(n)
    if p == NULL:
        raise MemoryError()
    return p
