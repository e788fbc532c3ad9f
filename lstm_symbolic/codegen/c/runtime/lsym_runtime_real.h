/* The runtime's functions of one real type, included by lsym_runtime.h once per type, with
 *   LSYM_REAL  the type (double, float),      LSYM_FN(name)  name_<LSYM_SFX> (mm_nt_f64, mm_nt_f32),
 *   LSYM_VL    its elements per vector,       LSYM_TANH      its tanh,
 *   LSYM_GEMM  its cblas_?gemm.
 * Those are undefined at the end, ready for the next type.  No include guard: included twice on purpose. */

#define LSYM_NR (2 * LSYM_VL) /* columns of a packed panel: PK_NR_<sfx> */

/* Logistic sigmoid, finite for every x (no exp overflow): 0.5 tanh(0.5 x) + 0.5. */
LSYM_STATIC LSYM_REAL LSYM_FN(sigmoid)(LSYM_REAL x)
{
    return (LSYM_REAL)0.5 * LSYM_TANH((LSYM_REAL)0.5 * x) + (LSYM_REAL)0.5;
}

/* C (M x N) = A (M x K) B^T + beta C, with B (N x K); leading dimensions lda, ldb, ldc. */
LSYM_STATIC void LSYM_FN(mm_nt)(int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bm, int ldb,
    LSYM_REAL beta, LSYM_REAL *C, int ldc)
{
#ifdef LSTM_USE_CBLAS
    if ((double)M * N * K >= LSTM_CBLAS_MIN) {
        LSYM_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, (LSYM_REAL)1, A, lda, Bm, ldb, beta, C, ldc);
        return;
    }
#endif
    int i, j, k;
    for (i = 0; i < M; ++i) {
        const LSYM_REAL *a = A + (size_t)i * lda;
        LSYM_REAL *c = C + (size_t)i * ldc;
        for (j = 0; j < N; ++j) {
            const LSYM_REAL *b = Bm + (size_t)j * ldb;
            LSYM_REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (k = 0; k + 3 < K; k += 4) {
                s0 += a[k] * b[k];
                s1 += a[k + 1] * b[k + 1];
                s2 += a[k + 2] * b[k + 2];
                s3 += a[k + 3] * b[k + 3];
            }
            for (; k < K; ++k)
                s0 += a[k] * b[k];
            c[j] = (beta == 0 ? (LSYM_REAL)0 : beta * c[j]) + ((s0 + s1) + (s2 + s3));
        }
    }
}

/* C (M x N) = A (M x K) B (K x N) + beta C: i-k-j order, the inner loop runs along rows. */
LSYM_STATIC void LSYM_FN(mm_nn)(int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bm, int ldb,
    LSYM_REAL beta, LSYM_REAL *C, int ldc)
{
#ifdef LSTM_USE_CBLAS
    if ((double)M * N * K >= LSTM_CBLAS_MIN) {
        LSYM_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, (LSYM_REAL)1, A, lda, Bm, ldb, beta, C, ldc);
        return;
    }
#endif
    int i, j, k;
    for (i = 0; i < M; ++i) {
        LSYM_REAL *c = C + (size_t)i * ldc;
        for (j = 0; j < N; ++j)
            c[j] = beta == 0 ? (LSYM_REAL)0 : beta * c[j];
        for (k = 0; k < K; ++k) {
            const LSYM_REAL a = A[(size_t)i * lda + k];
            const LSYM_REAL *b = Bm + (size_t)k * ldb;
            for (j = 0; j < N; ++j)
                c[j] += a * b[j];
        }
    }
}

/* A register of the tiles: LSYM_VL reals (one real without vectors), loaded from and stored to any real's
 * address by LSYM_AT.  (Not by memcpy: GCC 12 tuned for some CPUs, e.g. -march=native on a Rocket Lake, copies
 * 64 bytes as two halves and then keeps the tile's accumulators in memory, 4-5 times slower.) */
#ifdef LSTM_VECTORS
typedef LSYM_REAL LSYM_FN(pkv) __attribute__((vector_size(LSTM_VB), aligned(sizeof(LSYM_REAL)), may_alias));
#else
typedef LSYM_REAL LSYM_FN(pkv);
#endif
#define LSYM_AT(p) (*(LSYM_FN(pkv) *)(p))

/* Packs op(W) (K x N; W itself when trans is 0, else W^T with W N x K) into panels of PK_NR columns,
 * each K x PK_NR, zero-padded: panels p0 .. p1 - 1. */
LSYM_STATIC void LSYM_FN(pk_panels)(int trans, int N, int K, const LSYM_REAL *W, int ldw, LSYM_REAL *Wp, int p0,
    int p1)
{
    int p, j, k;
    for (p = p0; p < p1; ++p) {
        LSYM_REAL *d = Wp + (size_t)p * K * LSYM_NR;
        const int j0 = p * LSYM_NR, nc = N - j0 < LSYM_NR ? N - j0 : LSYM_NR;
        if (trans) {
            for (j = 0; j < LSYM_NR; ++j)
                for (k = 0; k < K; ++k)
                    d[(size_t)k * LSYM_NR + j] = j < nc ? W[(size_t)(j0 + j) * ldw + k] : (LSYM_REAL)0;
        } else if (nc == LSYM_NR) {
            for (k = 0; k < K; ++k)
                memcpy(d + (size_t)k * LSYM_NR, W + (size_t)k * ldw + j0, sizeof(LSYM_REAL) * LSYM_NR);
        } else {
            for (k = 0; k < K; ++k)
                for (j = 0; j < LSYM_NR; ++j)
                    d[(size_t)k * LSYM_NR + j] = j < nc ? W[(size_t)k * ldw + j0 + j] : (LSYM_REAL)0;
        }
    }
}

/* The same, this thread's share of the panels. */
LSYM_STATIC void LSYM_FN(pk_pack)(int trans, int N, int K, const LSYM_REAL *W, int ldw, LSYM_REAL *Wp, int tid,
    int nth)
{
    const int np = (N + LSYM_NR - 1) / LSYM_NR;
    LSYM_FN(pk_panels)(trans, N, K, W, ldw, Wp, SPLIT_(np, tid, nth), SPLIT_(np, tid + 1, nth));
}

/* One tile: C (mc x nc) = (or +=, when add) A (mr x K) times the packed panel Bp (K x PK_NR), with
 * A(i, k) = A[i * ars + k * acs] (rows of a matrix: ars = lda, acs = 1; a packed panel: ars = 1,
 * acs = LSTM_MR).  Inlined with constant mr and add, so that the accumulators stay in registers; a
 * tile of 1 or 2 rows keeps 4 / mr partial sums over k, so that enough multiply-adds are in flight. */
LSTM_TILE void LSYM_FN(pk_tile)(const int mr, int K, const LSYM_REAL *A, int ars, int acs, const LSYM_REAL *Bp,
    LSYM_REAL *C, int ldc, int mc, int nc, const int add)
{
    const int ku = mr == 1 ? 4 : mr == 2 ? 2 : 1;
    LSYM_FN(pkv) acc0[4][LSTM_MR], acc1[4][LSTM_MR];
    int i, j, k, u;
    LSTM_UNROLL
    for (u = 0; u < ku; ++u) {
        LSTM_UNROLL
        for (i = 0; i < mr; ++i)
            acc0[u][i] = acc1[u][i] = (LSYM_FN(pkv)){0};
    }
    for (k = 0; k + ku <= K; k += ku) {
        LSTM_UNROLL
        for (u = 0; u < ku; ++u) {
            const LSYM_REAL *b = Bp + (size_t)(k + u) * LSYM_NR;
            const LSYM_FN(pkv) b0 = LSYM_AT(b), b1 = LSYM_AT(b + LSYM_VL);
            LSTM_UNROLL
            for (i = 0; i < mr; ++i) {
                const LSYM_REAL a = A[(size_t)i * ars + (size_t)(k + u) * acs];
                acc0[u][i] += a * b0;
                acc1[u][i] += a * b1;
            }
        }
    }
    for (; k < K; ++k) {
        const LSYM_REAL *b = Bp + (size_t)k * LSYM_NR;
        const LSYM_FN(pkv) b0 = LSYM_AT(b), b1 = LSYM_AT(b + LSYM_VL);
        LSTM_UNROLL
        for (i = 0; i < mr; ++i) {
            acc0[0][i] += A[(size_t)i * ars + (size_t)k * acs] * b0;
            acc1[0][i] += A[(size_t)i * ars + (size_t)k * acs] * b1;
        }
    }
    LSTM_UNROLL
    for (u = 1; u < ku; ++u) {
        LSTM_UNROLL
        for (i = 0; i < mr; ++i) {
            acc0[0][i] += acc0[u][i];
            acc1[0][i] += acc1[u][i];
        }
    }
    if (mc == mr && nc == LSYM_NR) {
        LSTM_UNROLL
        for (i = 0; i < mr; ++i) {
            LSYM_REAL *c = C + (size_t)i * ldc;
            if (add) {
                const LSYM_FN(pkv) c0 = LSYM_AT(c), c1 = LSYM_AT(c + LSYM_VL);
                acc0[0][i] += c0;
                acc1[0][i] += c1;
            }
            LSYM_AT(c) = acc0[0][i];
            LSYM_AT(c + LSYM_VL) = acc1[0][i];
        }
    } else {
        LSYM_REAL t[LSTM_MR][LSYM_NR];
        LSTM_UNROLL
        for (i = 0; i < mr; ++i) {
            LSYM_AT(t[i]) = acc0[0][i];
            LSYM_AT(t[i] + LSYM_VL) = acc1[0][i];
        }
        for (i = 0; i < mc; ++i)
            for (j = 0; j < nc; ++j)
                C[(size_t)i * ldc + j] = add ? C[(size_t)i * ldc + j] + t[i][j] : t[i][j];
    }
}

/* C (M x N) = (or +=, when add) A (M x K) times the packed Bp (K x N, from pk_pack): blocks of LSTM_MC
 * rows of A, each multiplied by every panel in turn, in tiles of LSTM_MR rows (then 4, 2, 1 for the rest). */
LSTM_TILE void LSYM_FN(pk_rows)(int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bp, LSYM_REAL *C,
    int ldc, const int add)
{
    int i0, i, p;
    for (i0 = 0; i0 < M; i0 += LSTM_MC) {
        const int m = M - i0 < LSTM_MC ? M - i0 : LSTM_MC;
        for (p = 0; p * LSYM_NR < N; ++p) {
            const LSYM_REAL *bp = Bp + (size_t)p * K * LSYM_NR;
            const int nc = N - p * LSYM_NR < LSYM_NR ? N - p * LSYM_NR : LSYM_NR;
            const LSYM_REAL *a = A + (size_t)i0 * lda;
            LSYM_REAL *c = C + (size_t)i0 * ldc + (size_t)p * LSYM_NR;
            for (i = 0; i + LSTM_MR <= m; i += LSTM_MR)
                LSYM_FN(pk_tile)(LSTM_MR, K, a + (size_t)i * lda, lda, 1, bp, c + (size_t)i * ldc, ldc, LSTM_MR, nc, add);
            if (m - i >= 4) {
                LSYM_FN(pk_tile)(4, K, a + (size_t)i * lda, lda, 1, bp, c + (size_t)i * ldc, ldc, 4, nc, add);
                i += 4;
            }
            if (m - i >= 2) {
                LSYM_FN(pk_tile)(2, K, a + (size_t)i * lda, lda, 1, bp, c + (size_t)i * ldc, ldc, 2, nc, add);
                i += 2;
            }
            if (m - i >= 1)
                LSYM_FN(pk_tile)(1, K, a + (size_t)i * lda, lda, 1, bp, c + (size_t)i * ldc, ldc, 1, nc, add);
        }
    }
}

/* C (M x N) = (or +=, when add) A (M x K) times the packed Bp (K x N, from pk_pack). */
LSYM_STATIC void LSYM_FN(mm_pk)(int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bp, LSYM_REAL *C,
    int ldc, int add)
{
    if (add)
        LSYM_FN(pk_rows)(M, N, K, A, lda, Bp, C, ldc, 1);
    else
        LSYM_FN(pk_rows)(M, N, K, A, lda, Bp, C, ldc, 0);
}

/* C (M x N) += A^T B, with A (K x M) and B (K x N), by the team of threads (every thread calls it), with one
 * barrier, at the end (the next call may share out Ap differently).  Each thread takes its strips of LSTM_MR rows
 * of C and, in blocks of LSTM_KC rows of A and B, packs its strips' columns of the block of A into its part of
 * Ap (a BLAS packs A^T from rows lda apart; here each row of A is read in runs of LSTM_MR), then packs each panel
 * of PK_NR columns of the block of B in turn onto its stack and runs every strip's tile on it.  A, the larger
 * operand (d_lin over all steps), is so read once by the team, each thread its columns of it, with no barrier
 * between blocks; each element of C is summed in the same order for any number of threads.  Bp is not used. */
LSYM_STATIC void LSYM_FN(mm_tnp)(int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bm, int ldb,
    LSYM_REAL *C, int ldc, LSYM_REAL *Ap, LSYM_REAL *Bp, int tid, int nth)
{
    const int np = (N + LSYM_NR - 1) / LSYM_NR, ns = (M + LSTM_MR - 1) / LSTM_MR;
    const int s0 = SPLIT_(ns, tid, nth), s1 = SPLIT_(ns, tid + 1, nth);
    LSYM_REAL panel[LSTM_KC * LSYM_NR];
    int k0, k, s, ii, p;
    (void)Bp;
    for (k0 = 0; k0 < K && s0 < s1; k0 += LSTM_KC) {
        const int kc = K - k0 < LSTM_KC ? K - k0 : LSTM_KC;
        for (s = s0; s < s1; ++s) {
            const int i = s * LSTM_MR, mc = M - i < LSTM_MR ? M - i : LSTM_MR;
            LSYM_REAL *strip = Ap + (size_t)s * LSTM_KC * LSTM_MR;
            for (k = 0; k < kc; ++k) {
                const LSYM_REAL *a = A + (size_t)(k0 + k) * lda + i;
                if (mc == LSTM_MR) {
                    memcpy(strip + (size_t)k * LSTM_MR, a, sizeof(LSYM_REAL) * LSTM_MR);
                } else {
                    for (ii = 0; ii < LSTM_MR; ++ii)
                        strip[(size_t)k * LSTM_MR + ii] = ii < mc ? a[ii] : (LSYM_REAL)0;
                }
            }
        }
        for (p = 0; p < np; ++p) {
            const int nc = N - p * LSYM_NR < LSYM_NR ? N - p * LSYM_NR : LSYM_NR;
            LSYM_FN(pk_panels)(0, N - p * LSYM_NR, kc, Bm + (size_t)k0 * ldb + (size_t)p * LSYM_NR, ldb, panel, 0, 1);
            for (s = s0; s < s1; ++s) {
                const int i = s * LSTM_MR, mc = M - i < LSTM_MR ? M - i : LSTM_MR;
                LSYM_FN(pk_tile)(LSTM_MR, kc, Ap + (size_t)s * LSTM_KC * LSTM_MR, 1, LSTM_MR, panel,
                    C + (size_t)i * ldc + (size_t)p * LSYM_NR, ldc, mc, nc, 1);
            }
        }
    }
    LSTM_BARRIER
}

/* The weight gradients, C (M x N) += A^T B, by the team: on the tiles (mm_tnp); a call too small to
 * pack (pk 0) hands them to CBLAS where there is one (its small-matrix kernels are faster there),
 * each thread its rows of C. */
LSYM_STATIC void LSYM_FN(wg)(int pk, int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bm, int ldb,
    LSYM_REAL *C, int ldc, LSYM_REAL *Ap, LSYM_REAL *Bp, int tid, int nth)
{
#ifdef LSTM_USE_CBLAS
    if (!pk) {
        const int m0 = SPLIT_(M, tid, nth), m1 = SPLIT_(M, tid + 1, nth);
        if (m1 > m0)
            LSYM_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, m1 - m0, N, K, (LSYM_REAL)1, A + m0, lda, Bm, ldb,
                (LSYM_REAL)1, C + (size_t)m0 * ldc, ldc);
        return;
    }
#endif
    (void)pk;
    LSYM_FN(mm_tnp)(M, N, K, A, lda, Bm, ldb, C, ldc, Ap, Bp, tid, nth);
}

/* -- the workspace and the caller's weights, for every cell's kernel -- */

/* 1 when the n arrays w[idx[k]] of `size` elements lie one after the other in this order. */
LSYM_STATIC int LSYM_FN(lsym_adjacent)(int n, const int *idx, const LSYM_REAL *const *w, size_t size)
{
    int k;
    for (k = 1; k < n && w[idx[k]] == w[idx[0]] + (size_t)k * size; ++k)
        ;
    return k == n;
}

/* The weights stacked on one operand: the caller's arrays when adjacent, else `copy`, filled. */
LSYM_STATIC const LSYM_REAL *LSYM_FN(lsym_stacked)(int n, const int *idx, const LSYM_REAL *const *w, size_t size, LSYM_REAL *copy)
{
    int k;
    if (LSYM_FN(lsym_adjacent)(n, idx, w, size))
        return w[idx[0]];
    for (k = 0; k < n; ++k)
        memcpy(copy + (size_t)k * size, w[idx[k]], size * sizeof(LSYM_REAL));
    return copy;
}

/* The next workspace array of n elements (at *off, which moves past it to the next 64-byte boundary). */
LSYM_STATIC LSYM_REAL *LSYM_FN(lsym_take)(LSYM_REAL *work, size_t *off, size_t n)
{
    LSYM_REAL *at = work + *off;
    *off += ALIGN_(n);
    return at;
}

/* dst = src (n elements), or zeros when src is NULL. */
LSYM_STATIC void LSYM_FN(lsym_copy)(LSYM_REAL *dst, const LSYM_REAL *src, size_t n)
{
    if (src)
        memcpy(dst, src, n * sizeof(LSYM_REAL));
    else
        memset(dst, 0, n * sizeof(LSYM_REAL));
}

#undef LSYM_NR
#undef LSYM_AT
#undef LSYM_REAL
#undef LSYM_SFX
#undef LSYM_VL
#undef LSYM_TANH
#undef LSYM_GEMM
