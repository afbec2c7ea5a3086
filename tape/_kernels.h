/* Inline C kernels of the replay for arithmetic, comparisons and selection.
 *
 * One loop per op and broadcasting case (the op is chosen outside the loop), written so that gcc
 * vectorizes them; numpy's own loops serve the long arrays of the ops numpy has. The op codes
 * repeat those of _replay.pyx, which checks at import that they agree.
 */
#ifndef TAPE_KERNELS_H
#define TAPE_KERNELS_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Compiled for AVX-512, AVX2 and the baseline; the loader picks the best the CPU has (gcc
 * function multi-versioning on x86-64 Linux; elsewhere a single baseline version). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define TK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TK_CLONES
#endif

/* The elementwise loops below may run in place (out == a: the lowering reuses the buffer of an
 * input that dies there) but never on partly overlapping arrays, so there is no loop-carried
 * dependence; this tells gcc, which otherwise falls back to scalar code whenever out == a. */
#if defined(__GNUC__) && !defined(__clang__)
#define TK_IVDEP _Pragma("GCC ivdep")
#else
#define TK_IVDEP
#endif

enum {
    TK_ADD = 0, TK_SUB = 1, TK_MUL = 2, TK_DIV = 3, TK_POW = 4, TK_MAX = 5, TK_MIN = 6,
    TK_GT = 7, TK_GE = 8, TK_LT = 9, TK_LE = 10, TK_EQ = 11, TK_NE = 12, TK_LOGADDEXP = 13,
    TK_FLOOR_LOG = 14, TK_FLOOR_RECIP = 15
};

/* out[i] = EXPR(x, y) with x = a[i] or a[0], y = b[i] or b[0] */
#define TK_BIN_LOOP(EXPR)                                                              \
    do {                                                                               \
        if (sa && sb) {                                                                \
            TK_IVDEP for (i = 0; i < n; i++) { const double x = a[i], y = b[i]; out[i] = (EXPR); } \
        } else if (sa) {                                                               \
            const double y = b[0];                                                     \
            TK_IVDEP for (i = 0; i < n; i++) { const double x = a[i]; out[i] = (EXPR); }        \
        } else if (sb) {                                                               \
            const double x = a[0];                                                     \
            TK_IVDEP for (i = 0; i < n; i++) { const double y = b[i]; out[i] = (EXPR); }        \
        } else {                                                                       \
            const double x = a[0], y = b[0];                                           \
            const double v = (EXPR);                                                   \
            TK_IVDEP for (i = 0; i < n; i++) out[i] = v;                                        \
        }                                                                              \
    } while (0)

enum { TK_NEG = 0, TK_SQUARE = 6, TK_ABS = 7, TK_RECIP = 18 };

/* out[i] = op(a[i]) for the cheap unary ops (op codes of _replay.pyx's U_ table; out may be a):
 * 0 when handled, -1 when the caller must use another kernel. */
TK_CLONES static int tape_unary_inline(int fn, double *out, const double *a, long n)
{
    long i;
    switch (fn) {
    case TK_NEG: TK_IVDEP for (i = 0; i < n; i++) out[i] = -a[i]; return 0;
    case TK_SQUARE: TK_IVDEP for (i = 0; i < n; i++) out[i] = a[i] * a[i]; return 0;
    case TK_ABS: TK_IVDEP for (i = 0; i < n; i++) out[i] = fabs(a[i]); return 0;
    case TK_RECIP: TK_IVDEP for (i = 0; i < n; i++) out[i] = 1.0 / a[i]; return 0;
    default: return -1;
    }
}

/* Returns 0 when it handled op `fn`, -1 when the caller must use another kernel. */
TK_CLONES static int tape_binary_inline(int fn, double *out, const double *a, long sa, const double *b,
                              long sb, long n)
{
    long i;
    switch (fn) {
    case TK_ADD: TK_BIN_LOOP(x + y); return 0;
    case TK_SUB: TK_BIN_LOOP(x - y); return 0;
    case TK_MUL: TK_BIN_LOOP(x * y); return 0;
    case TK_DIV: TK_BIN_LOOP(x / y); return 0;
    /* NaN propagates as in numpy.maximum / numpy.minimum */
    case TK_MAX: TK_BIN_LOOP((x != x || y != y) ? x + y : (x >= y ? x : y)); return 0;
    case TK_MIN: TK_BIN_LOOP((x != x || y != y) ? x + y : (x <= y ? x : y)); return 0;
    case TK_GT: TK_BIN_LOOP(x > y ? 1.0 : 0.0); return 0;
    case TK_GE: TK_BIN_LOOP(x >= y ? 1.0 : 0.0); return 0;
    case TK_LT: TK_BIN_LOOP(x < y ? 1.0 : 0.0); return 0;
    case TK_LE: TK_BIN_LOOP(x <= y ? 1.0 : 0.0); return 0;
    case TK_EQ: TK_BIN_LOOP(x == y ? 1.0 : 0.0); return 0;
    case TK_NE: TK_BIN_LOOP(x != y ? 1.0 : 0.0); return 0;
    /* the derivative of log(max(x, y)) in x: 1/x above the floor y, 0 below it (and for NaN) */
    case TK_FLOOR_RECIP: TK_BIN_LOOP(x >= y ? 1.0 / x : 0.0); return 0;
    default: return -1;
    }
}

/* out[i] = c[i] != 0 ? a[i] : b[i], each operand full (stride 1) or a broadcast scalar (0) */
TK_CLONES static void tape_where(double *out, const double *c, long sc, const double *a, long sa,
                       const double *b, long sb, long n)
{
    long i;
    if (sc && sa && sb) {
        TK_IVDEP for (i = 0; i < n; i++) out[i] = c[i] != 0.0 ? a[i] : b[i];
    } else if (sc && sa) {
        const double y = b[0];
        TK_IVDEP for (i = 0; i < n; i++) out[i] = c[i] != 0.0 ? a[i] : y;
    } else if (sc && sb) {
        const double x = a[0];
        TK_IVDEP for (i = 0; i < n; i++) out[i] = c[i] != 0.0 ? x : b[i];
    } else {
        TK_IVDEP for (i = 0; i < n; i++) out[i] = c[i * sc] != 0.0 ? a[i * sa] : b[i * sb];
    }
}

/* out[i] = a[i] * b[i] + c[i] (rounded twice, as the separate multiply and add it replaces: the
 * extension is compiled with -ffp-contract=off, so no clone fuses them), each operand full
 * (stride 1) or a broadcast scalar (0) */
TK_CLONES static void tape_muladd(double *out, const double *a, long sa, const double *b, long sb,
                                  const double *c, long sc, long n)
{
    long i;
    if (sa && sb && sc) {
        TK_IVDEP for (i = 0; i < n; i++) { const double p = a[i] * b[i]; out[i] = p + c[i]; }
    } else if (sa && !sb && sc) {
        const double y = b[0];
        TK_IVDEP for (i = 0; i < n; i++) { const double p = a[i] * y; out[i] = p + c[i]; }
    } else if (!sa && sb && sc) {
        const double x = a[0];
        TK_IVDEP for (i = 0; i < n; i++) { const double p = x * b[i]; out[i] = p + c[i]; }
    } else if (sa && !sb && !sc) {
        const double y = b[0], z = c[0];
        TK_IVDEP for (i = 0; i < n; i++) { const double p = a[i] * y; out[i] = p + z; }
    } else if (sa && sb && !sc) {
        const double z = c[0];
        TK_IVDEP for (i = 0; i < n; i++) { const double p = a[i] * b[i]; out[i] = p + z; }
    } else {
        TK_IVDEP for (i = 0; i < n; i++) { const double p = a[i * sa] * b[i * sb]; out[i] = p + c[i * sc]; }
    }
}

/* out[i] = sum_k c[k * n + i] y[i]^k for k < d, y[i] = x[idx[i]] (or x[i] when idx is NULL), by
 * Horner's rule on eight elements at a time held in registers (two 4-wide vectors: independent
 * chains, so the latency of the multiply-adds overlaps), one store each */
typedef double tk_v4d __attribute__((vector_size(32)));

/* sum of a[i] * b[i], i < n (n <= 128: the base case of the pairwise event sums), sixteen
 * partial sums in four vectors combined in a fixed order */
TK_CLONES static double tape_dot_block(const double *restrict a, const double *restrict b, long n)
{
    tk_v4d r0 = {0, 0, 0, 0}, r1 = r0, r2 = r0, r3 = r0, x, y;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        memcpy(&x, a + i, 32); memcpy(&y, b + i, 32); r0 += x * y;
        memcpy(&x, a + i + 4, 32); memcpy(&y, b + i + 4, 32); r1 += x * y;
        memcpy(&x, a + i + 8, 32); memcpy(&y, b + i + 8, 32); r2 += x * y;
        memcpy(&x, a + i + 12, 32); memcpy(&y, b + i + 12, 32); r3 += x * y;
    }
    r0 = (r0 + r1) + (r2 + r3);
    double t = (r0[0] + r0[1]) + (r0[2] + r0[3]);
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

TK_CLONES static void tape_polyval(double *restrict out, const double *restrict c,
                                   const double *restrict x, const int64_t *restrict idx,
                                   long n, long d)
{
    long i = 0, k;
    for (; i + 8 <= n; i += 8) {
        tk_v4d x0, x1, a0, a1, c0, c1;
        if (idx) {
            x0 = (tk_v4d){x[idx[i]], x[idx[i + 1]], x[idx[i + 2]], x[idx[i + 3]]};
            x1 = (tk_v4d){x[idx[i + 4]], x[idx[i + 5]], x[idx[i + 6]], x[idx[i + 7]]};
        } else {
            memcpy(&x0, x + i, sizeof x0);
            memcpy(&x1, x + i + 4, sizeof x1);
        }
        memcpy(&a0, c + (d - 1) * n + i, sizeof a0);
        memcpy(&a1, c + (d - 1) * n + i + 4, sizeof a1);
        for (k = d - 2; k >= 0; k--) {
            memcpy(&c0, c + k * n + i, sizeof c0);
            memcpy(&c1, c + k * n + i + 4, sizeof c1);
            a0 = a0 * x0 + c0;
            a1 = a1 * x1 + c1;
        }
        memcpy(out + i, &a0, sizeof a0);
        memcpy(out + i + 4, &a1, sizeof a1);
    }
    for (; i < n; i++) {
        const double xi = idx ? x[idx[i]] : x[i];
        double acc = c[(d - 1) * n + i];
        for (k = d - 2; k >= 0; k--) acc = acc * xi + c[k * n + i];
        out[i] = acc;
    }
}

#endif
