/* Test harness of the C runtime (tests/test_c_runtime.py): exports each routine of lsym_runtime.h, in
 * both real types, as an ordinary function that ctypes can call. */
#include <stdlib.h>

#include "lsym_runtime.h"

int h_mr(void)
{
    return LSTM_MR;
}

int h_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int h_uses_cblas(void)
{
    return lsym_uses_cblas();
}

int h_threads(int B, int H)
{
    return lsym_threads(B, H);
}

#define LSYM_REAL double
#define LSYM_SFX f64
#define H_NR PK_NR_f64
#include "runtime_harness_real.h"

#define LSYM_REAL float
#define LSYM_SFX f32
#define H_NR PK_NR_f32
#include "runtime_harness_real.h"
