/* version.c - what silo-lua --version reports. */
#include "version.h"

#include <amqp.h>
#include <libmemcached/memcached.h>
#include <luajit.h>
#include <mongoc/mongoc.h>
#include <mysql.h>
#include <stdio.h>

const char *silo_version(void) {
    return SILO_VERSION;
}

void silo_library_versions(char *buffer, size_t size) {
    snprintf(buffer, size, "%s, libmongoc %s, librabbitmq %s, MariaDB Connector/C %s, libmemcached %s",
             LUAJIT_VERSION, mongoc_get_version(), amqp_version(), mysql_get_client_info(),
             memcached_lib_version());
}
