/* erf/erfc over double arrays for the replay kernels, branch-free and with an own exp(-x^2) so that gcc -O3
 * auto-vectorizes them (calls to libm erf/erfc keep the loops scalar); max error ~1.5 ulp, same bits either way. */
#ifndef TAPE_ERF_H
#define TAPE_ERF_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Method (coefficients fitted for this file: minimax-type rational fits in mpmath at 50 digits).
 * One 4/4 rational rho = P(v)/Q(v) per element, with its coefficients taken from a table row chosen by |x|:
 *   small row (|x| <= 0.5):  v = x^2, rho ~ erf(x)/x - 1;  erf(x) = x + x rho,
 *       erfc(x) = (1 - x) - x rho with 1 - x = w + e carried exactly (Fast2Sum).
 *   otherwise, a = |x|:  erfc(a) = exp(-a^2) H(a) / a,  H(a) = a exp(a^2) erfc(a) = h (1 + rho) in [0.30, 0.565]:
 *       14 rows by quarter octaves of a from 0.5 to 6, v = a - (left end of the row), which is exact;
 *       a row for a >= 6 with v = a^2 (a rational in 1/a^2);  h = the row's middle value of H cut to 26 bits,
 *       so |rho| < 0.066.  Relative error of rho < 1.3e-17 (with the coefficients as rounded).
 *     exp(-a^2) = 2^m 2^(j/64) exp(r):  a^2 = uh + ul exactly (uh = square of a cut to 26 bits),
 *       k = 64m + j = round(-64 uh/ln2) by the 1.5*2^52 trick, r = -a^2 - k ln2/64 (|r| <= 0.0055; the uh part
 *       of the reduction is exact), exp(r) - 1 by a degree-5 polynomial, 2^(j/64) = th + tl from a table with th
 *       cut to 26 bits, 2^m put in the exponent bits.  Then th h is exact, and
 *       erfc(a) = 2^m (th h + (tl h + (th + tl) h sig)) / a,  sig = (1 + rho) exp(r) - 1 (small),
 *       so only the leading sum and the division are rounded at full size.
 *   erf(x) = sign(x) (1 - erfc(|x|)) for |x| > 0.5, with |x| clamped to 6 (erf is +-1 to the last bit beyond
 *   5.93);  erfc(x) = 2 - erfc(|x|) for x < -0.5;  erfc(x) = 0 for x > 27.5 (it underflows from 27.23 on);
 *   erf(-0) = -0;  NaN in gives NaN out.
 * Every element evaluates every part; the parts are chosen with integer bit masks (see tape__gt) and the row
 * index.  Only +, -, *, /, fabs, integer bit operations and table loads are used, in a fixed order (nothing
 * relies on reassociation), so the vectorized and the scalar loops give bit-identical results. */

/* Selection uses integer masks only.  A ?: (or a bool turned into a mask) becomes a branch into which gcc sinks or
 * threads the FP work of an arm, and if-conversion will not speculate FP operations that may trap (the default
 * -ftrapping-math), or needs a 64-bit integer select that plain SSE2 lacks: either way the loop stays scalar.
 * Integer subtract/shift/and/or and table loads (emulated gathers) vectorize everywhere. */
static inline uint64_t tape__bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static inline double tape__dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* All ones if u > lim else 0, for u, lim < 2^63: bit patterns of non-negative doubles (NaNs sort above +inf). */
static inline uint64_t tape__gt(uint64_t u, uint64_t lim)
{
    return (uint64_t)0 - ((lim - u) >> 63);
}

/* m ? a : b for m all ones or all zeros. */
static inline double tape__blend(uint64_t m, double a, double b)
{
    return tape__dbl((tape__bits(a) & m) | (tape__bits(b) & ~m));
}

/* Rows of h, P[0..4], Q[1..4] (Q[0] = 1): 0-13 quarter octaves of a from 0.5, 14 a >= 6, 15 small. */
static const double tape__erf_coef[160] = {
    0x1.4e89b28000000p-2, -0x1.d8b7a0232b048p-5, 0x1.013fa0261b895p+0, 0x1.7614a58cdffa1p-1, 0x1.f2a980de9970ep-3,
    0x1.e747e6f81acc6p-6, 0x1.a5b7806ec2aa5p+0, 0x1.13046794c610dp+0, 0x1.53513eb850690p-2, 0x1.51fb147ddc168p-5,
    0x1.741da20000000p-2, -0x1.5ad68856b604cp-5, 0x1.711b60ad238c2p-1, 0x1.0b35ed92ec34ep-1, 0x1.5856fedb3fb20p-3,
    0x1.45834c15fad19p-6, 0x1.998640b4ce8afp+0, 0x1.02db89c36b847p+0, 0x1.34d803a53aff9p-2, 0x1.2897c3663a350p-5,
    0x1.923bb40000000p-2, -0x1.06d43d5dabb95p-5, 0x1.1383fe1dfed85p-1, 0x1.8c914baf65beap-2, 0x1.eea89c572ae2bp-4,
    0x1.c452342f13e9bp-7, 0x1.8dca5f48bd27ep+0, 0x1.e794316ab8040p-1, 0x1.1960fcd7e414dp-2, 0x1.04a6858eddb9ep-5,
    0x1.aaa7d08000000p-2, -0x1.984af33164f84p-6, 0x1.a76886b7c973ep-2, 0x1.2e7e4b41c2378p-2, 0x1.6da4c8cede8f0p-4,
    0x1.436a76466327ep-7, 0x1.82801c47c6881p+0, 0x1.cb79ee9bc716cp-1, 0x1.009d6855174d9p-2, 0x1.cad1aaf22bb9ap-6,
    0x1.c5bb3c8000000p-2, -0x1.1ed068009f1fep-5, 0x1.2fe0aa5aeb9fdp-2, 0x1.b9ae9c7131dfap-3, 0x1.06074a28636bdp-4,
    0x1.c4c4e0ebca98cp-8, 0x1.798fda9cd5d82p+0, 0x1.b617799b4fa1cp-1, 0x1.dd2ce2445f994p-3, 0x1.9f9f6a3facab3p-6,
    0x1.e21b518000000p-2, -0x1.7fcbd407ee5b0p-6, 0x1.8db24ba072688p-3, 0x1.1b3f2741ea1dfp-3, 0x1.3cf12af402b7fp-5,
    0x1.0012b36299be7p-8, 0x1.64c8ccfa01d02p+0, 0x1.85dd4472b619dp-1, 0x1.8e38e86764a8cp-3, 0x1.4385a5a38641fp-6,
    0x1.f62c758000000p-2, -0x1.0c231802e84dfp-6, 0x1.11d1c64464228p-3, 0x1.7c9bae35a74c5p-4, 0x1.92c0676eb2e72p-6,
    0x1.30bef2a9c79d3p-9, 0x1.51958b3094facp+0, 0x1.5bebf2f938df5p-1, 0x1.4de1bcaf29a3fp-3, 0x1.fb2ced453a246p-7,
    0x1.0264a10000000p-1, -0x1.83cb308caf041p-7, 0x1.8805caa3eafbdp-4, 0x1.08f7e338f40f8p-4, 0x1.09bf2fa77f633p-6,
    0x1.794819f9cc10bp-10, 0x1.3fd6c8e0a69d1p+0, 0x1.37624a794ea7fp-1, 0x1.1943baa4b7014p-3, 0x1.9058bf2d05d0bp-7,
    0x1.099d1d0000000p-1, -0x1.f8648da0dcd9ep-7, 0x1.fdb28fbd8fbb4p-5, 0x1.5f6522e05c151p-5, 0x1.55156d8fab441p-7,
    0x1.cbbea869d3a15p-11, 0x1.315b10737547fp+0, 0x1.1b49730490dc5p-1, 0x1.e69aed1aa4d57p-4, 0x1.4874bc5cca55cp-7,
    0x1.105d6e0000000p-1, -0x1.30b87f7e7b684p-7, 0x1.2e0419ed2478bp-5, 0x1.84efa68b940fcp-6, 0x1.556d78fe16dc2p-8,
    0x1.98038eb79a1a7p-12, 0x1.139e8e3135a1fp+0, 0x1.cb44337e51dc2p-2, 0x1.6015c87ecc0dep-4, 0x1.a512d9337f0ffp-8,
    0x1.149b1d0000000p-1, -0x1.8956150e094a5p-8, 0x1.81a2a1d60fe8dp-6, 0x1.cd8e62cb2a81ep-7, 0x1.706965931ea95p-9,
    0x1.89a40cbcc9c00p-13, 0x1.f44f64fc7f558p-1, 0x1.78b8ee1b0b2d6p-2, 0x1.03b51dfc425cbp-4, 0x1.159a1cd92ed07p-8,
    0x1.176d060000000p-1, -0x1.0b4a165d960e5p-8, 0x1.047a078d84fb4p-6, 0x1.213366fc85708p-7, 0x1.a5d4b0ae80c88p-10,
    0x1.962d469151d90p-14, 0x1.c881c969bca4ap-1, 0x1.3888d1b4971f8p-2, 0x1.862e929ff534dp-5, 0x1.77c8020e6a551p-9,
    0x1.19fb770000000p-1, -0x1.47186104f966dp-8, 0x1.35c7b0d64b9b5p-7, 0x1.59538f0a95311p-8, 0x1.d976cefe0b009p-11,
    0x1.a0952100cb053p-15, 0x1.a4bb574053d94p-1, 0x1.08cf960b16b9bp-2, 0x1.2f118df84aad9p-5, 0x1.0aaecb4e19356p-9,
    0x1.1c34588000000p-1, -0x1.713ab171ee6aap-9, 0x1.5be4456d40062p-8, 0x1.4c0228bbfb79ep-9, 0x1.82e204633b5f1p-12,
    0x1.1d22d2608d8a8p-16, 0x1.663b8440f5786p-1, 0x1.7e230de884e22p-3, 0x1.709f41bb0bd1fp-6, 0x1.0fafa9cb5b315p-10,
    0x1.20dd750000000p-1, -0x1.3b40a3f712477p-1, -0x1.74cbdbaf9b60dp-1, -0x1.885a481964c94p-3, -0x1.ab1163d37cf19p-7,
    0x1.89e59b3644003p-36, 0x1.7d2c7b21fc8e3p+1, 0x1.fdeb4e9078f6bp+0, 0x1.b063e9bc47800p-2, 0x1.ab116494bddc5p-6,
    0x0.0p+0, 0x1.06eba8214db69p-3, -0x1.45deff91860d2p-2, -0x1.76e3873cb2360p-5, -0x1.d6f9a0623fc14p-8,
    -0x1.2c2ce28119207p-12, 0x1.cdc67d88c6314p-2, 0x1.5f6bada4297f6p-4, 0x1.0fe7f263c3facp-7, 0x1.70aa5c7abafdep-12
};

/* 2^(j/64) = tape__erf_th[j] (26 bits) + tape__erf_tl[j] */
static const double tape__erf_th[64] = {
    0x1.0000000000000p+0, 0x1.02c9a40000000p+0, 0x1.059b0d0000000p+0, 0x1.0874518000000p+0,
    0x1.0b55870000000p+0, 0x1.0e3ec30000000p+0, 0x1.11301d0000000p+0, 0x1.1429ab0000000p+0,
    0x1.172b840000000p+0, 0x1.1a35be8000000p+0, 0x1.1d48730000000p+0, 0x1.2063b88000000p+0,
    0x1.2387a70000000p+0, 0x1.26b4568000000p+0, 0x1.29e9df8000000p+0, 0x1.2d285a8000000p+0,
    0x1.306fe08000000p+0, 0x1.33c08b0000000p+0, 0x1.371a738000000p+0, 0x1.3a7db38000000p+0,
    0x1.3dea650000000p+0, 0x1.4160a20000000p+0, 0x1.44e0860000000p+0, 0x1.486a2b8000000p+0,
    0x1.4bfdad8000000p+0, 0x1.4f9b278000000p+0, 0x1.5342b58000000p+0, 0x1.56f4738000000p+0,
    0x1.5ab07e0000000p+0, 0x1.5e76f18000000p+0, 0x1.6247eb0000000p+0, 0x1.6623880000000p+0,
    0x1.6a09e68000000p+0, 0x1.6dfb240000000p+0, 0x1.71f75e8000000p+0, 0x1.75feb58000000p+0,
    0x1.7a11470000000p+0, 0x1.7e2f338000000p+0, 0x1.8258998000000p+0, 0x1.868d998000000p+0,
    0x1.8ace540000000p+0, 0x1.8f1ae98000000p+0, 0x1.93737b0000000p+0, 0x1.97d82a0000000p+0,
    0x1.9c49180000000p+0, 0x1.a0c6678000000p+0, 0x1.a5503b0000000p+0, 0x1.a9e6b58000000p+0,
    0x1.ae89f98000000p+0, 0x1.b33a2b8000000p+0, 0x1.b7f76f0000000p+0, 0x1.bcc1e90000000p+0,
    0x1.c199be0000000p+0, 0x1.c67f130000000p+0, 0x1.cb720e0000000p+0, 0x1.d072d48000000p+0,
    0x1.d5818e0000000p+0, 0x1.da9e600000000p+0, 0x1.dfc9730000000p+0, 0x1.e502ee8000000p+0,
    0x1.ea4afa0000000p+0, 0x1.efa1bf0000000p+0, 0x1.f507658000000p+0, 0x1.fa7c180000000p+0
};
static const double tape__erf_tl[64] = {
    0x0.0p+0, -0x1.887f9f1190835p-28, 0x1.8ac2ba1d73e2ap-27, 0x1.d66f20230d7c9p-30,
    -0x1.833b784eb3a37p-27, 0x1.69e8d10103a17p-27, 0x1.25b50a4ebbf1bp-32, -0x1.56d2204cbefe7p-28,
    -0x1.c15742919041cp-27, 0x1.b7e5ba9e5b4c8p-27, 0x1.68b9aa7805b80p-28, 0x1.8a3358ee3bac1p-30,
    -0x1.8a9dc7993e052p-28, -0x1.0ec1916d42cc6p-27, -0x1.70108f69ed175p-27, -0x1.1bfcf4bff6e2bp-28,
    0x1.18db8a96f46adp-27, 0x1.320b7fa64e431p-27, -0x1.8aac6ab1d7560p-29, -0x1.8d30048af21b7p-27,
    -0x1.f6e5eee525f6fp-27, 0x1.f72e29f84325cp-28, 0x1.8624b40c4dbd0p-30, -0x1.1f6197f61f2e2p-27,
    -0x1.64eaec715e343p-27, -0x1.62d35952cc275p-28, -0x1.62b07e20f57c4p-28, -0x1.4ad8259913500p-28,
    -0x1.5bd5eb539b67fp-27, -0x1.296f5bc8b20dap-27, 0x1.d2ac258f87d03p-31, 0x1.2a91124893ecfp-27,
    -0x1.80c4336f74d05p-28, -0x1.cd72e886ef8eap-27, 0x1.d8bee7ba46e1ep-29, -0x1.bd98374091656p-28,
    0x1.f580c36bea881p-27, -0x1.30b19defa2fd4p-28, 0x1.4cce128acf88bp-28, 0x1.a2497640720edp-27,
    0x1.15506dadd3e2bp-27, 0x1.1577362b98274p-28, 0x1.9b8bc9e8a0388p-29, -0x1.0d8d83a30b6f8p-31,
    0x1.51f8480e3e236p-27, 0x1.aef2b2594d6d4p-27, 0x1.1f12ae45a1225p-27, -0x1.4301205e0a6dep-27,
    0x1.5ad3ad5e8734dp-28, 0x1.3c57ebdaff43ap-30, 0x1.7daf237553d84p-27, 0x1.2f074891ee83dp-30,
    -0x1.3d56b1eeef9a7p-27, -0x1.a82eb4b5dec80p-28, -0x1.8837cb757e1a1p-27, 0x1.03c4bdc687918p-27,
    -0x1.822dbc6d12fd3p-27, 0x1.ed9942b84600dp-27, 0x1.bdcdaf5cb4656p-27, -0x1.d30027630bb40p-30,
    0x1.52486cc2c7b9dp-27, -0x1.9ea5d888e02dep-28, 0x1.b722a033a7c26p-27, 0x1.9e90d82e90a7ep-28
};

/* The shared part.  small = mask of the elements that use the small row.  Returns rho;
 * *big = erfc(a) for a >= 0.5 (0 for a > 27.5, NaN for NaN; not meaningful for small elements). */
static inline double tape__erf_core(double a, uint64_t small, double* big)
{
    const double shift = 0x1.8p52, inv_l = 0x1.71547652b82fep+6;   /* 64/ln2 */
    const double l_hi = 0x1.62e42fefa0000p-7, l_lo = 0x1.cf79abc9e3b3ap-46;   /* ln2/64, l_hi: 36 bits */
    uint64_t ua = tape__bits(a);
    /* table row: quarter octave of a from 0.5, 14 for a >= 6 (and inf, NaN), 15 for small */
    uint64_t tail = tape__gt(ua, 0x4018000000000000ULL - 1);
    uint64_t row = (((ua >> 50) - 0xff8) & ~(tail | small)) | (14 & tail) | (15 & small);
    uint64_t ci = 10 * row;
#define TAPE__C(i) tape__erf_coef[ci + (i)]
    double v = tape__blend(tail | small, a * a, a - tape__dbl(ua & 0xfffc000000000000ULL));
    double v2 = v * v;
    double pn = (TAPE__C(1) + TAPE__C(2) * v) + v2 * ((TAPE__C(3) + TAPE__C(4) * v) + v2 * TAPE__C(5));
    double pd = (1.0 + TAPE__C(6) * v) + v2 * ((TAPE__C(7) + TAPE__C(8) * v) + v2 * TAPE__C(9));
    double rho = pn / pd;
    /* exp(-a^2) = 2^m 2^(j/64) (1 + em1) */
    double ah = tape__dbl(ua & 0xfffffffff8000000ULL);   /* 26 bits: ah*ah is exact */
    double al = a - ah;
    double uh = ah * ah, ul = al * (a + ah);        /* a^2 = uh + ul */
    double ks = uh * -inv_l + shift;                /* 1.5*2^52 + k, k = round(-64 uh/ln2) */
    double kd = ks - shift;
    double r = (-uh - kd * l_hi) - (ul + kd * l_lo);   /* the first difference is exact */
    double r2 = r * r;                              /* exp(r) - 1: */
    double em1 = r + r2 * ((0.49999999999948347 + 0.1666666666667756 * r)
                           + r2 * (0.041666723485806516 + 0.008333334331147475 * r));
    uint64_t ki = tape__bits(ks);
    double th = tape__erf_th[ki & 63], tl = tape__erf_tl[ki & 63];
    double sc = tape__dbl(((ki >> 6) + (1023 + 128)) << 52);   /* 2^(m+128), m = floor(k/64) >= -1092 */
    double h = TAPE__C(0);
#undef TAPE__C
    double sig = rho + em1 * (1.0 + rho);           /* (1 + rho) exp(r) - 1 */
    double hh = th * h, hl = tl * h;                /* hh exact */
    double y = (hh + (hl + (hh + hl) * sig)) / a;
    y = (y * sc) * 0x1p-128;                        /* exact scaling; rounds once if subnormal */
    *big = tape__dbl(tape__bits(y) & ~tape__gt(ua, 0x403b800000000000ULL));   /* 0 for a > 27.5 */
    return rho;
}

#define TAPE__SIGN 0x8000000000000000ULL
#define TAPE__INF 0x7ff0000000000000ULL

/* out[i] = erf(x[i]) for 0 <= i < n; out may be x. */
/* AVX2 and baseline copies, chosen at load time (no FMA in either: the same bits) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define TAPE__CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TAPE__CLONES
#endif

TAPE__CLONES static void tape_erf_array(double* out, const double* x, long n)
{
    for (long i = 0; i < n; i++) {
        double xi = x[i];
        uint64_t ua = tape__bits(xi) & ~TAPE__SIGN;
        uint64_t small = ~tape__gt(ua, 0x3fe0000000000000ULL);
        uint64_t clamp = tape__gt(ua, 0x4018000000000000ULL);   /* erf = +-1 beyond 5.93; avoids subnormals */
        double a = tape__dbl((ua & ~clamp) | (0x4018000000000000ULL & clamp));
        double c;
        double rho = tape__erf_core(a, small, &c);
        double s = xi + xi * rho;
        c = tape__dbl(tape__bits(1.0 - c) | (tape__bits(xi) & TAPE__SIGN));
        double r = tape__blend(small, s, c);
        out[i] = tape__blend(tape__gt(ua, TAPE__INF), xi + xi, r);   /* NaN */
    }
}

/* out[i] = erfc(x[i]) for 0 <= i < n; out may be x. */
TAPE__CLONES static void tape_erfc_array(double* out, const double* x, long n)
{
    for (long i = 0; i < n; i++) {
        double xi = x[i];
        uint64_t ua = tape__bits(xi) & ~TAPE__SIGN;
        uint64_t small = ~tape__gt(ua, 0x3fe0000000000000ULL);
        double c;
        double rho = tape__erf_core(tape__dbl(ua), small, &c);
        double w = 1.0 - xi;
        double e = (1.0 - w) - xi;                  /* 1 - x = w + e exactly, as |x| <= 1 */
        double s = w + (e - xi * rho);
        double big = tape__blend((uint64_t)0 - (tape__bits(xi) >> 63), 2.0 - c, c);   /* x < 0 */
        double r = tape__blend(small, s, big);
        out[i] = tape__blend(tape__gt(ua, TAPE__INF), xi + xi, r);   /* NaN */
    }
}

#endif
