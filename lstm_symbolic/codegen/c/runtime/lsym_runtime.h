/* The C runtime of the kernels lstm_symbolic generates: matrix products, packing, threads, the fork
 * guard, the choice of BLAS.  Hand-written and the same for every cell: each generated kernel includes
 * it, so its static functions are inlined into the kernel as if written there.  Shipped inside the
 * package (lstm_symbolic/codegen/c/runtime/) and written next to every emitted kernel.
 *
 * Both real types from one source: lsym_runtime_real.h is included twice, with LSYM_REAL double
 * (functions suffixed _f64: mm_nt_f64, ...) and float (_f32).
 *
 * Compile-time switches (all optional): LSTM_USE_CBLAS (products of at least LSTM_CBLAS_MIN
 * multiply-adds go to cblas_?gemm), LSTM_OPENBLAS (it is OpenBLAS: see blas_solo_),
 * LSTM_SCIPY_OPENBLAS (the scipy-openblas32 wheel's, with prefixed symbols), -fopenmp (threads),
 * LSTM_NO_VECTORS (scalar tiles), and the sizes LSTM_MAX_THREADS, LSTM_MIN_ROWS, LSTM_MIN_COLS,
 * LSTM_PACK_MIN, LSTM_KC below.
 */
#ifndef LSYM_RUNTIME_H
#define LSYM_RUNTIME_H

#include <math.h>
#include <string.h>

/* Every function here is static: a kernel that does not call one must not be warned about it. */
#if defined(__GNUC__)
#define LSYM_STATIC static __attribute__((unused))
#else
#define LSYM_STATIC static
#endif

#ifdef LSTM_USE_CBLAS
#include <cblas.h>
#ifdef LSTM_SCIPY_OPENBLAS /* the scipy-openblas32 wheel's OpenBLAS: every symbol prefixed scipy_ */
#define cblas_dgemm scipy_cblas_dgemm
#define cblas_sgemm scipy_cblas_sgemm
#define openblas_get_parallel scipy_openblas_get_parallel
#define openblas_get_num_threads scipy_openblas_get_num_threads
#define openblas_set_num_threads scipy_openblas_set_num_threads
#endif
/* Products smaller than this many multiply-adds run the loops below: a CBLAS call costs more. */
#ifndef LSTM_CBLAS_MIN
#define LSTM_CBLAS_MIN 4096.0
#endif
#endif

/* The element-wise passes touch element col_ of each row only: tell GCC's vectorizer.  (clang's
 * equivalent, `clang loop vectorize(assume_safety)`, warns where a libm call blocks vectorizing.) */
#if defined(__GNUC__) && !defined(__clang__)
#define LSTM_IVDEP _Pragma("GCC ivdep")
#else
#define LSTM_IVDEP
#endif

/* A parallel region of nt_ threads (a local of the caller), its barriers and the thread's place. */
#ifdef _OPENMP
#include <omp.h>
#define LSTM_PARALLEL _Pragma("omp parallel if(nt_ > 1) num_threads(nt_)")
#define LSTM_BARRIER _Pragma("omp barrier")
#define LSTM_THREAD_NUM omp_get_thread_num()
#define LSTM_NUM_THREADS omp_get_num_threads()
#else
#define LSTM_PARALLEL
#define LSTM_BARRIER
#define LSTM_THREAD_NUM 0
#define LSTM_NUM_THREADS 1
#endif
/* Threads of the time loop: at most this many (the workspace holds their partial sums) ... */
#ifndef LSTM_MAX_THREADS
#define LSTM_MAX_THREADS 16
#endif
/* ... and each with at least this many rows of the batch; ... */
#ifndef LSTM_MIN_ROWS
#define LSTM_MIN_ROWS 8
#endif
/* ... or, when the batch is too small to share out (fewer than 2 x LSTM_MIN_ROWS rows) and the hidden
 * size is a multiple of 32, each with at least this many hidden units (a multiple of 32). */
#ifndef LSTM_MIN_COLS
#define LSTM_MIN_COLS 64
#endif

/* Part k of nth of the range 0 .. n - 1 starts here. */
#define SPLIT_(n, k, nth) ((int)((size_t)(n) * (size_t)(k) / (size_t)(nth)))
/* ... and of the hidden units 0 .. H - 1 (H a multiple of 32) in whole panels of every PK_NR. */
#define SPLIT32_(n, k, nth) (32 * SPLIT_((n) / 32, k, nth))

/* Workspace buffers start on 64-byte boundaries (relative to the workspace). */
#define ALIGN_(n) (((size_t)(n) + 15u) & ~(size_t)15u)

/* The products of the time loop apply the same weights at every step.  They are packed once per call,
 * in panels of PK_NR columns stored k-major, and each step runs a register-tiled kernel over the
 * panels: a BLAS call would pack the weights again at every step (see docs/performance.md).  The
 * kernel holds a tile of LSTM_MR rows x PK_NR columns of the result in registers, as GNU C vectors of
 * LSTM_VB bytes where the compiler has them (AVX-512, AVX, else SSE widths), else as scalars. */
#if defined(__GNUC__) && !defined(LSTM_NO_VECTORS)
#define LSTM_VECTORS 1
#if defined(__AVX512F__)
#define LSTM_VB 64
#define LSTM_MR 8
#elif defined(__AVX__)
#define LSTM_VB 32
#define LSTM_MR 6
#else
#define LSTM_VB 16
#define LSTM_MR 6
#endif
#define LSTM_TILE static inline __attribute__((always_inline))
#define LSTM_UNROLL _Pragma("GCC unroll 16")
#define PK_VL_f64 (LSTM_VB / 8)
#define PK_VL_f32 (LSTM_VB / 4)
#else
#define LSTM_MR 4
#define LSTM_TILE static
#define LSTM_UNROLL
#define PK_VL_f64 1
#define PK_VL_f32 1
#endif
/* A panel is two vectors wide. */
#define PK_NR_f64 (2 * PK_VL_f64)
#define PK_NR_f32 (2 * PK_VL_f32)
/* A call packs the recurrent weights when each thread has at least this many rows over all steps
 * (T x its rows of the batch): below, packing costs more than it saves (batch 1, a single step), and
 * the per-step products run as the others do (CBLAS or loops). */
#ifndef LSTM_PACK_MIN
#define LSTM_PACK_MIN 64
#endif
/* Rows of A and B per block of the weight gradients' products (A^T B over all steps). */
#ifndef LSTM_KC
#define LSTM_KC 256
#endif
/* Rows of A per block of a packed product: the block stays in cache while the panels pass. */
#define LSTM_MC 64
/* Packed weights take their columns rounded up to this (a multiple of every PK_NR). */
#define PK_COLS_(n) (((size_t)(n) + 31u) / 32u * 32u)
/* ... and packed panels of A their rows rounded up to LSTM_MR. */
#define PK_ROWS_(n) (((size_t)(n) + LSTM_MR - 1) / LSTM_MR * LSTM_MR)

/* 1 when the products go to a CBLAS (compiled with LSTM_USE_CBLAS), else 0. */
LSYM_STATIC int lsym_uses_cblas(void)
{
#ifdef LSTM_USE_CBLAS
    return 1;
#else
    return 0;
#endif
}

#if defined(_OPENMP) && defined(__unix__)
#include <pthread.h>
/* A child made by fork() has none of its parent's OpenMP threads, and GCC's OpenMP runtime hangs there
 * if it started a team in the parent: the child runs on its own thread (1 after fork). */
static volatile int forked_ = 0;
LSYM_STATIC void on_fork_child_(void)
{
    forked_ = 1;
}
#define LSTM_WATCH_FORK()                                                      \
    do {                                                                       \
        static int watching_ = 0;                                              \
        if (!watching_ && pthread_atfork(NULL, NULL, on_fork_child_) == 0)     \
            watching_ = 1;                                                     \
    } while (0)
#define LSTM_FORKED forked_
#else
#define LSTM_WATCH_FORK() ((void)0)
#define LSTM_FORKED 0
#endif

/* The threads a call on a batch of B rows and H hidden units runs on: OMP_NUM_THREADS (at most
 * LSTM_MAX_THREADS), each with at least LSTM_MIN_ROWS rows, or with a smaller batch and H a multiple
 * of 32, at least LSTM_MIN_COLS hidden units; 1 without OpenMP and in a child made by fork(). */
LSYM_STATIC int lsym_threads(int B, int H)
{
#ifdef _OPENMP
    int n;
    LSTM_WATCH_FORK();
    if (LSTM_FORKED)
        return 1;
    n = omp_get_max_threads();
    if (n > LSTM_MAX_THREADS)
        n = LSTM_MAX_THREADS;
    if (B >= 2 * LSTM_MIN_ROWS) {
        if (n > B / LSTM_MIN_ROWS)
            n = B / LSTM_MIN_ROWS;
    } else if (H % 32 != 0) {
        n = 1;
    } else if (n > H / LSTM_MIN_COLS) {
        n = H / LSTM_MIN_COLS;
    }
    return n > 1 ? n : 1;
#else
    (void)B;
    (void)H;
    return 1;
#endif
}

/* Inside the parallel region every thread runs its products alone: an OpenMP OpenBLAS sees that it is
 * inside a parallel region; a pthreads OpenBLAS is told, and its thread count is restored after (its own
 * threads would otherwise compete with the team for the cores). */
LSYM_STATIC int blas_solo_(int nt)
{
#if defined(LSTM_OPENBLAS) && defined(_OPENMP)
    if (nt > 1 && openblas_get_parallel() == 1) {
        const int n = openblas_get_num_threads();
        openblas_set_num_threads(1);
        return n;
    }
#endif
    (void)nt;
    return 0;
}

LSYM_STATIC void blas_restore_(int n)
{
#if defined(LSTM_OPENBLAS) && defined(_OPENMP)
    if (n > 0)
        openblas_set_num_threads(n);
#endif
    (void)n;
}

/* Where the tiles are AVX-512 (LSTM_VB 64), GCC's vectorizer may use the same width in the loops that follow:
 * the element-wise passes then call glibc's 8-wide vector tanh/exp (libmvec) instead of the 4-wide ones GCC
 * prefers by default on such CPUs.  Placed after every system header, so that it only touches this code. */
#if defined(LSTM_VECTORS) && LSTM_VB == 64 && defined(__GNUC__) && __GNUC__ >= 8 && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

/* lsym_runtime_real.h once per real type: LSYM_FN(mm_nt) names mm_nt_f64, then mm_nt_f32. */
#define LSYM_CAT2_(a, b) a##_##b
#define LSYM_CAT_(a, b) LSYM_CAT2_(a, b)
#define LSYM_FN(name) LSYM_CAT_(name, LSYM_SFX)

#define LSYM_REAL double
#define LSYM_SFX f64
#define LSYM_VL PK_VL_f64
#define LSYM_TANH tanh
#define LSYM_GEMM cblas_dgemm
#include "lsym_runtime_real.h"

#define LSYM_REAL float
#define LSYM_SFX f32
#define LSYM_VL PK_VL_f32
#define LSYM_TANH tanhf
#define LSYM_GEMM cblas_sgemm
#include "lsym_runtime_real.h"

#endif /* LSYM_RUNTIME_H */
