/*
 * example.c -- predictions of an exported azc model from C.
 *
 *     cc example.c -I. -L. -lmodel -Wl,-rpath,'$ORIGIN' -o predict
 *     ./predict state.bin < rows.txt
 *
 * Reads rows of F numbers (whitespace separated) from standard input and
 * prints one prediction per row: s1, and for classification models also
 * sigmoid(s1).  state.bin is the fitted state `azc export --train` saved
 * (the raw bytes of an azc_model_state); without it the model only ran Setup.
 * Numbers print with 17 significant digits, so they read back exactly.
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int main(int argc, char **argv) {
    const azc_model_info_t *info = azc_model_info();
    int64_t features = info->features;
    azc_model_state *m = azc_model_new(0);
    double *x = malloc((size_t)features * sizeof(double));
    if (m == NULL || x == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    if (argc > 1) {
        FILE *f = fopen(argv[1], "rb");
        size_t size = (size_t)azc_model_state_size();
        if (f == NULL) {
            perror(argv[1]);
            return 1;
        }
        if (fread(m, 1, size, f) != size || fgetc(f) != EOF || m->magic != AZC_MODEL_MAGIC ||
            m->abi_version != AZC_MODEL_ABI_VERSION || m->fingerprint != info->fingerprint) {
            fprintf(stderr, "%s: not a state of this model (exactly %zu bytes expected)\n",
                    argv[1], size);
            return 1;
        }
        fclose(f);
    }
    for (long long row = 1;; row++) {
        int64_t j = 0;
        int got = 1;
        while (j < features && (got = scanf("%lf", &x[j])) == 1) {
            j++;
        }
        if (got == 0) {
            fprintf(stderr, "row %lld: number %lld is not a number\n", row, (long long)j + 1);
            return 1;
        }
        if (j == 0) {
            break;
        }
        if (j < features) {
            fprintf(stderr, "row %lld needs %lld numbers, got %lld\n", row,
                    (long long)features, (long long)j);
            return 1;
        }
        double s1, p;
        if (azc_model_predict(m, x, 1, &s1, &p) != AZC_OK) {
            fprintf(stderr, "azc_model_predict failed\n");
            return 1;
        }
        if (info->eval_type == AZC_ACCURACY) {
            printf("%.17g %.17g\n", s1, p);
        } else {
            printf("%.17g\n", s1);
        }
    }
    free(x);
    azc_model_free(m);
    return 0;
}
