/* The harness's wrappers of one real type (LSYM_REAL, LSYM_SFX, H_NR = PK_NR_<sfx>): included twice. */

int LSYM_FN(h_nr)(void)
{
    return H_NR;
}

void LSYM_FN(h_sigmoid)(int n, const LSYM_REAL *x, LSYM_REAL *y)
{
    int i;
    for (i = 0; i < n; ++i)
        y[i] = LSYM_FN(sigmoid)(x[i]);
}

void LSYM_FN(h_mm_nt)(int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bm, int ldb,
    LSYM_REAL beta, LSYM_REAL *C, int ldc)
{
    LSYM_FN(mm_nt)(M, N, K, A, lda, Bm, ldb, beta, C, ldc);
}

void LSYM_FN(h_mm_nn)(int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bm, int ldb,
    LSYM_REAL beta, LSYM_REAL *C, int ldc)
{
    LSYM_FN(mm_nn)(M, N, K, A, lda, Bm, ldb, beta, C, ldc);
}

/* Part tid of nth of the packing of op(W) (K x N) into Wp. */
void LSYM_FN(h_pk_pack)(int trans, int N, int K, const LSYM_REAL *W, int ldw, LSYM_REAL *Wp, int tid, int nth)
{
    LSYM_FN(pk_pack)(trans, N, K, W, ldw, Wp, tid, nth);
}

/* C (M x N) = (or +=, when add) A op(W), as a kernel runs it: op(W) packed by a team of nt_ threads, then each
 * thread its rows of A.  Returns the threads that ran it. */
int LSYM_FN(h_mm_pk)(int trans, int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *W, int ldw,
    LSYM_REAL *C, int ldc, int add, int nt_)
{
    LSYM_REAL *Wp = malloc(sizeof(LSYM_REAL) * PK_COLS_(N) * (size_t)K);
    int team = 1;
    (void)nt_; /* unused without OpenMP */
    if (!Wp)
        return 0;
    LSTM_PARALLEL
    {
        const int tid = LSTM_THREAD_NUM, nth = LSTM_NUM_THREADS, r0 = SPLIT_(M, tid, nth), r1 = SPLIT_(M, tid + 1, nth);
        if (tid == 0)
            team = nth;
        LSYM_FN(pk_pack)(trans, N, K, W, ldw, Wp, tid, nth);
        LSTM_BARRIER
        LSYM_FN(mm_pk)(r1 - r0, N, K, A + (size_t)r0 * lda, lda, Wp, C + (size_t)r0 * ldc, ldc, add);
    }
    free(Wp);
    return team;
}

/* C (M x N) += A^T B (A K x M, B K x N) by a team of nt_ threads: wg (pk 0: CBLAS where there is one, else
 * mm_tnp; pk 1: mm_tnp).  Returns the threads that ran it. */
int LSYM_FN(h_wg)(int pk, int M, int N, int K, const LSYM_REAL *A, int lda, const LSYM_REAL *Bm, int ldb,
    LSYM_REAL *C, int ldc, int nt_)
{
    LSYM_REAL *Ap = malloc(sizeof(LSYM_REAL) * LSTM_KC * PK_ROWS_(M));
    LSYM_REAL *Bp = malloc(sizeof(LSYM_REAL) * LSTM_KC * PK_COLS_(N));
    int team = 1;
    (void)nt_; /* unused without OpenMP */
    if (Ap && Bp) {
        LSTM_PARALLEL
        {
            const int tid = LSTM_THREAD_NUM, nth = LSTM_NUM_THREADS;
            if (tid == 0)
                team = nth;
            LSYM_FN(wg)(pk, M, N, K, A, lda, Bm, ldb, C, ldc, Ap, Bp, tid, nth);
        }
    }
    free(Ap);
    free(Bp);
    return Ap && Bp ? team : 0;
}

/* The same for two products one after the other in one team, sharing Ap and Bp, as a kernel's weight gradients
 * run: C1 (M x N1) += A^T B1, then C2 (M x N2) += A^T B2 (leading dimensions N1, N2). */
int LSYM_FN(h_wg_pair)(int pk, int M, int N1, int N2, int K, const LSYM_REAL *A, const LSYM_REAL *B1, LSYM_REAL *C1,
    const LSYM_REAL *B2, LSYM_REAL *C2, int nt_)
{
    const int N = N1 > N2 ? N1 : N2;
    LSYM_REAL *Ap = malloc(sizeof(LSYM_REAL) * LSTM_KC * PK_ROWS_(M));
    LSYM_REAL *Bp = malloc(sizeof(LSYM_REAL) * LSTM_KC * PK_COLS_(N));
    int team = 1;
    (void)nt_; /* unused without OpenMP */
    if (Ap && Bp) {
        LSTM_PARALLEL
        {
            const int tid = LSTM_THREAD_NUM, nth = LSTM_NUM_THREADS;
            if (tid == 0)
                team = nth;
            LSYM_FN(wg)(pk, M, N1, K, A, M, B1, N1, C1, N1, Ap, Bp, tid, nth);
            LSYM_FN(wg)(pk, M, N2, K, A, M, B2, N2, C2, N2, Ap, Bp, tid, nth);
        }
    }
    free(Ap);
    free(Bp);
    return Ap && Bp ? team : 0;
}

#undef LSYM_REAL
#undef LSYM_SFX
#undef H_NR
