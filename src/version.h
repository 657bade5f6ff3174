/* version.h - silo-lua's version and the versions of the libraries it embeds. */
#ifndef SILO_VERSION_H
#define SILO_VERSION_H

#include <stddef.h>

const char *silo_version(void);
/* "LuaJIT 2.1.0-beta3, libmongoc 1.23.1, ..." into buffer */
void silo_library_versions(char *buffer, size_t size);

#endif
