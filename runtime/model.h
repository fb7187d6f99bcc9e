/*
 * model.h -- the C ABI of a model exported by `azc export` (ABI version 2).
 *
 * An exported model is one AutoML-Zero program (Setup, Predict, Learn over
 * a memory of scalars, vectors of F features and F x F matrices, all
 * float64) compiled into libmodel.so.  The library needs only libc and libm.
 *
 *     #include "model.h"
 *     azc_model_state *m = azc_model_new(42);                 // seed of the random ops
 *     int64_t trained;
 *     azc_model_fit(m, x_train, y_train, n_train, 100.0, &trained);
 *     azc_model_predict(m, x_test, n_test, predictions, NULL);
 *     azc_model_free(m);
 *
 *     cc main.c -I model -L model -lmodel -Wl,-rpath,"$PWD/model" -o main
 *
 * Arrays: x holds n examples of AZC_MODEL_FEATURES float64 each, row after
 * row (C order); y, out and proba hold n float64.  Any float64 is accepted
 * (NaN and infinities flow through the program as in azc's interpreter;
 * predictor.py refuses them, as scikit-learn estimators do).
 *
 * What the calls do is azc's evaluation protocol, with task index 0:
 *
 * - The first azc_model_fit or azc_model_predict on a state runs Setup on the
 *   zeroed memory, drawing its random numbers as execution (SETUP, 0).
 * - azc_model_fit, for each example i in order, with t = train_steps:
 *     v0 = x[i], s0 = 0, Predict            draws as (PREDICT, t)
 *     classification (eval type 4): s1 = 1 / (1 + exp(-s1)), written back
 *     if |y[i] - s1| is NaN or > max_abs_error: train_steps = t + 1,
 *        stopped = 1, return AZC_STOPPED (*trained = i)
 *     v0 = x[i], s0 = y[i], Learn           draws as (LEARN, t)
 *     train_steps = t + 1
 *   and returns AZC_OK (*trained = n).  Labels of classification are 0 or 1.
 * - azc_model_predict, for each example i in order, with c = predict_count:
 *     v0 = x[i], s0 = 0, Predict            draws as (VALID, c + i)
 *     out[i] = s1; proba[i] = 1 / (1 + exp(-s1))   (either pointer may be NULL)
 *   then predict_count = c + n.  Predict may write memory that the next
 *   example reads (as in azc's validation); copy the state first (memcpy of
 *   azc_model_state_size() bytes) to predict without changing the model.
 *
 * Random numbers: execution (KIND, index) has the id (index << 2) | KIND with
 * KIND 0 Setup, 1 Predict in training, 2 Learn, 3 Predict in validation, and
 * the key mix(mix(seed ^ mix(0 + GOLDEN)) ^ id) of azc's counter-based
 * generator (runtime/rng.py of azc); the same seed gives the same draws as
 * azc's interpreter and JIT.
 *
 * The state is one flat block of azc_model_state_size() bytes that may be
 * saved, copied (memcpy) and restored on a machine with the same library.
 * Its memory is laid out as azc's kernels lay it out: scalar s<k> at
 * memory[k], vector v<k> at memory[AZC_MODEL_VECTOR_BASE + k *
 * AZC_MODEL_VECTOR_STRIDE] (F values), matrix m<k> row-major at
 * memory[AZC_MODEL_MATRIX_BASE + k * AZC_MODEL_MATRIX_STRIDE] (F*F values);
 * padding is zero.  s0 is the label, s1 the prediction, v0 the features.
 *
 * The library was compiled for the CPU named by azc_model_info()->cpu with the
 * LLVM features in ->cpu_features: on a CPU without them it crashes with an
 * illegal instruction (predictor.py checks before loading; C callers can
 * compare with their CPU, or export with --target generic).
 */
#ifndef AZC_MODEL_H
#define AZC_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AZC_MODEL_ABI_VERSION 2
#define AZC_MODEL_MAGIC 0x4C45444F4D435A41ULL /* "AZCMODEL", little endian */

/* This model's sizes (filled in by azc export). */
/* @AZC_MODEL_CONSTANTS@ */

/* Status codes of azc_model_init, azc_model_fit and azc_model_predict. */
#define AZC_OK 0          /* done */
#define AZC_STOPPED 1     /* fit: training stopped on a NaN or too large error */
#define AZC_EBADSTATE (-1) /* the state is NULL or was not made by azc_model_init */
#define AZC_EINVAL (-2)   /* a bad argument (n < 0, NULL arrays, unknown eval type) */

#define AZC_RMS_ERROR 1   /* eval type: regression */
#define AZC_ACCURACY 4    /* eval type: binary classification (sigmoid on s1) */

/* What the library holds; strings are NUL-terminated and static. */
typedef struct azc_model_info {
    int64_t abi_version;    /* AZC_MODEL_ABI_VERSION */
    int64_t features;       /* F */
    int64_t scalars, vectors, matrices;
    int64_t memory_size;    /* float64 in the memory buffer */
    int64_t state_size;     /* bytes of a state */
    int64_t eval_type;      /* the export's: AZC_RMS_ERROR or AZC_ACCURACY */
    int64_t uses_random;    /* 1 if the program has random ops */
    int64_t predict_random; /* 1 if Predict has random ops (predictions depend on order) */
    int64_t vector_base, vector_stride, matrix_base, matrix_stride; /* layout, in float64 */
    int64_t fingerprint;    /* of this model (program, memory, F): its states carry it */
    const char *triple;       /* LLVM target triple */
    const char *cpu;          /* LLVM CPU name, e.g. "znver4" or "x86-64" */
    const char *cpu_features; /* LLVM feature string, e.g. "+avx2,+fma,-avx512f" */
    const char *program;      /* the program in canonical .az form */
} azc_model_info_t;

/* The state: this header, then memory[memory_size]. */
typedef struct azc_model_state {
    uint64_t magic;         /* AZC_MODEL_MAGIC */
    uint64_t abi_version;   /* AZC_MODEL_ABI_VERSION */
    uint64_t seed;          /* seed of the random ops */
    int64_t eval_type;      /* AZC_RMS_ERROR or AZC_ACCURACY */
    int64_t setup_done;     /* 1 once Setup ran */
    int64_t train_steps;    /* training steps run: the next one is (PREDICT/LEARN, this) */
    int64_t predict_count;  /* predictions run: the next one is (VALID, this) */
    int64_t stopped;        /* 1 once training stopped on a bad error */
    int64_t fingerprint;    /* the fingerprint of the model that made this state */
    int64_t reserved[7];    /* zero (keeps memory 64-byte aligned) */
    double memory[];        /* the program's memory (64-byte aligned in azc_model_new) */
} azc_model_state;

/* The library's sizes, target and program. */
const azc_model_info_t *azc_model_info(void);

/* Bytes of a state (header and memory). */
int64_t azc_model_state_size(void);

/* Make `m` (azc_model_state_size() bytes, 8-byte aligned) a fresh state: zero memory,
 * counters 0, the seed, eval_type AZC_RMS_ERROR, AZC_ACCURACY or 0 for the export's.
 * AZC_OK, or AZC_EINVAL. */
int32_t azc_model_init(azc_model_state *m, uint64_t seed, int64_t eval_type);

/* A fresh state with the export's eval type (malloc'ed, 64-byte aligned); NULL if out of
 * memory.  Release it with azc_model_free. */
azc_model_state *azc_model_new(uint64_t seed);
void azc_model_free(azc_model_state *m);

/* Train on n examples (see above).  AZC_OK, AZC_STOPPED, AZC_EBADSTATE or AZC_EINVAL;
 * *trained (if not NULL) is the number of examples trained (Learn run). */
int32_t azc_model_fit(azc_model_state *m, const double *x, const double *y, int64_t n,
                      double max_abs_error, int64_t *trained);

/* Predict n examples (see above): out[i] = s1, proba[i] = sigmoid(s1); either may be
 * NULL.  AZC_OK, AZC_EBADSTATE or AZC_EINVAL. */
int32_t azc_model_predict(azc_model_state *m, const double *x, int64_t n, double *out,
                          double *proba);

#ifdef __cplusplus
}
#endif

#endif /* AZC_MODEL_H */
