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

/* The logistic function without overflow for large |x|. */
static double tape_sigmoid(double x)
{
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

#endif
