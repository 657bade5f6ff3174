/* binlog.h - what the host needs from silo.binlog besides luaopen_silo_binlog (declared in host.h). */
#ifndef SILO_BINLOG_H
#define SILO_BINLOG_H

/* Async-signal-safe: ends the blocking next() of every open stream (shutdown() on their sockets); from then
 * on next() returns nil, "interrupted" in this process. For a SIGTERM/SIGINT handler. */
void silo_binlog_interrupt_all(void);

#endif
