/* Scalar special functions the replay needs and libm lacks: digamma and trigamma.
 *
 * Reflection for negative arguments, upward recurrence to x >= 12, then the asymptotic series;
 * relative accuracy ~1e-15 away from the poles (non-positive integers give NaN).
 */
#ifndef TAPE_SPECIAL_H
#define TAPE_SPECIAL_H
#include <math.h>

static double tape_digamma(double x)
{
    double r = 0.0;
    if (isnan(x)) return x;
    if (x <= 0.0) {
        if (x == floor(x)) return NAN;
        /* psi(x) = psi(1 - x) - pi / tan(pi x) */
        return tape_digamma(1.0 - x) - M_PI / tan(M_PI * x);
    }
    while (x < 12.0) { r -= 1.0 / x; x += 1.0; }
    double z = 1.0 / (x * x);
    double s = z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (1.0 / 240 - z * (1.0 / 132 - z * (691.0 / 32760 - z / 12.0))))));
    return r + log(x) - 0.5 / x - s;
}

static double tape_trigamma(double x)
{
    double r = 0.0;
    if (isnan(x)) return x;
    if (x <= 0.0) {
        if (x == floor(x)) return NAN;
        /* psi1(x) = pi^2 / sin^2(pi x) - psi1(1 - x) */
        double s = sin(M_PI * x);
        return M_PI * M_PI / (s * s) - tape_trigamma(1.0 - x);
    }
    while (x < 12.0) { r += 1.0 / (x * x); x += 1.0; }
    double z = 1.0 / (x * x);
    /* 1/x + 1/(2x^2) + sum_k B_2k / x^(2k+1) */
    double s = z * (1.0 / 6 - z * (1.0 / 30 - z * (1.0 / 42 - z * (1.0 / 30 - z * (5.0 / 66 - z * (691.0 / 2730 - z * 7.0 / 6))))));
    return r + 1.0 / x + 0.5 * z + s / x;
}

/* Polygamma psi^(n)(x), n >= 1: upward recurrence psi^(n)(x) = psi^(n)(x+1) - (-1)^n n!/x^(n+1)
 * to x >= 20 + n, then the asymptotic series with Bernoulli numbers B2..B20. Poles (x a
 * non-positive integer) give NaN. */
static double tape_polygamma(int n, double x)
{
    static const double B[10] = {1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66,
                                 -691.0 / 2730, 7.0 / 6, -3617.0 / 510, 43867.0 / 798,
                                 -174611.0 / 330};
    if (isnan(x) || n < 1) return NAN;
    if (x <= 0.0 && x == floor(x)) return NAN;
    double nfact = 1.0;
    for (int k = 2; k <= n; k++) nfact *= k;
    double sign = (n % 2) ? 1.0 : -1.0;            /* (-1)^(n+1) */
    double acc = 0.0;
    double lim = 20.0 + n;
    while (x < lim) {
        acc += 1.0 / pow(x, n + 1);                   /* sum of 1/x^(n+1) over the shifts */
        x += 1.0;
    }
    /* (n-1)!/x^n + n!/(2 x^(n+1)) + sum_k B_2k (2k+n-1)!/((2k)! x^(2k+n)) */
    double xn = pow(x, n);
    double s = (nfact / n) / xn + nfact / (2.0 * xn * x);
    double x2 = 1.0 / (x * x);
    double xp = 1.0 / xn;                            /* 1/x^(2k+n), k = 0 */
    double ratio = nfact / n;                        /* (2k+n-1)!/(2k)!, k = 0: (n-1)! */
    for (int k = 1; k <= 10; k++) {
        xp *= x2;
        ratio *= (double)(2 * k + n - 2) * (2 * k + n - 1) / ((2.0 * k - 1) * (2.0 * k));
        s += B[k - 1] * ratio * xp;
    }
    return sign * (s + nfact * acc);
}

/* The logistic function without overflow for large |x|. */
static double tape_sigmoid(double x)
{
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

#endif
