/* test.h - the few assertions the C unit tests need. A test binary exits non-zero on the first failure. */
#ifndef SILO_TEST_H
#define SILO_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int test_checks;

#define CHECK(condition, ...)                                                              \
    do {                                                                                   \
        test_checks++;                                                                     \
        if (!(condition)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #condition); \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define TEST_DONE() (printf("%d checks passed\n", test_checks), 0)

/* The value of an environment variable, or fallback when unset or empty. */
static inline const char *env_or(const char *name, const char *fallback) {
    const char *value = getenv(name);
    return value && *value ? value : fallback;
}

#endif
