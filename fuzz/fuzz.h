/* What every libFuzzer target here shares: libFuzzer's entry points (the
 * initializer is optional) and EXPECT, which stops the fuzzer on a broken
 * invariant (sanitizers catch memory errors and undefined behaviour; this
 * catches wrong answers). */
#ifndef LT_FUZZ_FUZZ_H
#define LT_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define EXPECT(c)                   \
    do {                            \
        if (!(c)) __builtin_trap(); \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
