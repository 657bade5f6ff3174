-- silo.amqp against the real RabbitMQ (vhost from SILO_AMQP_URL). This spec never disrupts the broker:
-- reconnection is in amqp_recovery_spec.lua.
local amqp = require "silo.amqp"
local core = require "silo.core"
local config = require "silo.config"

local function unique(what) return "spec.amqp." .. what .. "." .. core.random_hex(4) end

-- The configured URL with its user, password or port replaced.
local function url_with(pattern, replacement)
  return (config.get("amqp_url"):gsub(pattern, replacement, 1))
end

local function receive_one(conn, timeout)
  local delivery, why = conn:receive(timeout or 10)
  assert(delivery, "no delivery within the timeout" .. (why and (": " .. why) or ""))
  return delivery
end

describe("silo.amqp", function()
  local conn, exchange, queue

  before_each(function()
    conn = amqp.connect()
    exchange, queue = unique("x"), unique("q")
    conn:exchange_declare(exchange, "topic", { durable = false })
    conn:queue_declare(queue, { durable = false, auto_delete = true })
    conn:queue_bind(queue, exchange, "event.#")
  end)

  after_each(function()
    if conn then
      pcall(conn.queue_delete, conn, queue)
      pcall(conn.exchange_delete, conn, exchange)
      conn:close()
    end
  end)

  it("round-trips a message with its properties and nested headers", function()
    local sent_at = core.datetime(1701234567000)
    conn:publish(exchange, "event.created", '{"id":1}', {
      persistent = true, content_type = "application/json", message_id = "msg-1", timestamp = sent_at,
      headers = { attempt = 1, big = 9007199254740993LL, ratio = 0.5, ok = true, nothing = core.null,
        nested = { list = { 1, "two", { three = 3 } }, at = core.datetime(1701234568000) } },
    })
    conn:consume(queue, { prefetch = 5 })
    local d = receive_one(conn)
    assert.equal('{"id":1}', d.body)
    assert.equal(exchange, d.exchange)
    assert.equal("event.created", d.routing_key)
    assert.is_true(d.persistent)
    assert.equal("application/json", d.content_type)
    assert.equal("msg-1", d.message_id)
    assert.equal(sent_at, d.timestamp)
    assert.is_false(d.redelivered)
    assert.equal(1, d.headers.attempt)
    assert.equal(9007199254740993LL, d.headers.big)
    assert.equal(0.5, d.headers.ratio)
    assert.is_true(d.headers.ok)
    assert.equal(core.null, d.headers.nothing)
    assert.same({ 1, "two", { three = 3 } }, d.headers.nested.list)
    assert.equal(core.datetime(1701234568000), d.headers.nested.at)
    conn:ack(d)
    assert.is_nil(conn:receive(0.2))
  end)

  it("confirms a batch with one wait and delivers it in order", function()
    local batch = {}
    for i = 1, 200 do
      batch[i] = { exchange = exchange, routing_key = "event.n", body = tostring(i), persistent = true }
    end
    conn:publish_batch(batch)
    local _, count = conn:queue_declare(queue, { durable = false, auto_delete = true })
    assert.equal(200, count)
    conn:consume(queue, { prefetch = 50 })
    for i = 1, 200 do
      local d = receive_one(conn)
      assert.equal(tostring(i), d.body)
      conn:ack(d)
    end
  end)

  it("raises when a mandatory message cannot be routed", function()
    assert.has_error(function()
      conn:publish(exchange, "nobody.listens", "x", { mandatory = true })
    end, "publish: message returned by the broker: 312 NO_ROUTE (exchange '" .. exchange ..
      "', routing key 'nobody.listens')")
    assert.has_error(function()
      conn:publish_batch({
        { exchange = exchange, routing_key = "event.ok", body = "1", mandatory = true },
        { exchange = exchange, routing_key = "nowhere", body = "2", mandatory = true },
      })
    end, "publish: 1 of 2 messages unroutable, e.g. message returned by the broker: 312 NO_ROUTE (exchange '" ..
      exchange .. "', routing key 'nowhere')")
    conn:publish(exchange, "nobody.listens", "dropped without mandatory")
  end)

  it("raises when publishing to a missing exchange and keeps publishing afterwards", function()
    local missing = unique("missing")
    assert.has_error(function() conn:publish(missing, "k", "x") end,
      "publish: channel 1 closed by the broker: 404 NOT_FOUND - no exchange '" .. missing .. "' in vhost 'silo'")
    conn:publish(exchange, "event.after", "still works")
    conn:consume(queue)
    assert.equal("still works", receive_one(conn).body)
  end)

  it("dead-letters a nacked message and requeues on request", function()
    local dlx, parked = unique("dlx"), unique("parked")
    conn:exchange_declare(dlx, "fanout", { durable = false, auto_delete = true })
    conn:queue_declare(parked, { durable = false, auto_delete = true })
    conn:queue_bind(parked, dlx, "")
    local work = unique("work")
    conn:queue_declare(work, { durable = false, auto_delete = true,
      arguments = { ["x-dead-letter-exchange"] = dlx } })
    conn:queue_bind(work, exchange, "job.#")
    conn:publish(exchange, "job.1", "fails")
    conn:consume(work, { prefetch = 1 })
    local first = receive_one(conn)
    conn:nack(first, { requeue = true })
    local again = receive_one(conn)
    assert.is_true(again.redelivered)
    conn:nack(again, { requeue = false })
    conn:consume(parked)
    local dead = receive_one(conn)
    assert.equal("fails", dead.body)
    assert.equal("rejected", dead.headers["x-death"][1].reason)
    assert.equal(work, dead.headers["x-death"][1].queue)
    conn:ack(dead)
    conn:queue_delete(work)
    conn:queue_delete(parked)
  end)

  it("expires a message past its queue TTL into the dead-letter exchange", function()
    local dlx, expired, waiting = unique("dlx"), unique("expired"), unique("waiting")
    conn:exchange_declare(dlx, "topic", { durable = false, auto_delete = true })
    conn:queue_declare(expired, { durable = false, auto_delete = true })
    conn:queue_bind(expired, dlx, "#")
    conn:queue_declare(waiting, { durable = false, auto_delete = true, arguments = {
      ["x-dead-letter-exchange"] = dlx, ["x-message-ttl"] = 50 } })
    conn:queue_bind(waiting, exchange, "ttl.#")
    conn:publish(exchange, "ttl.soon", "too late", { message_id = "ttl-1" })
    conn:consume(expired)
    local dead = receive_one(conn)
    assert.equal("ttl-1", dead.message_id)
    assert.equal("ttl.soon", dead.routing_key)
    assert.equal("expired", dead.headers["x-death"][1].reason)
    conn:ack(dead)
    conn:queue_delete(waiting)
    conn:queue_delete(expired)
  end)

  it("declares a quorum queue whose delivery limit dead-letters a message redelivered too often", function()
    local dlx, parked, quorum = unique("dlx"), unique("parked"), unique("quorum")
    conn:exchange_declare(dlx, "fanout", { durable = false, auto_delete = true })
    conn:queue_declare(parked, { durable = false, auto_delete = true })
    conn:queue_bind(parked, dlx, "")
    conn:queue_declare(quorum, { durable = true, arguments = {
      ["x-queue-type"] = "quorum", ["x-delivery-limit"] = 1, ["x-dead-letter-exchange"] = dlx } })
    finally(function() conn:queue_delete(quorum) end)
    conn:queue_bind(quorum, exchange, "limit.#")
    conn:publish(exchange, "limit.1", "poison")
    local tag = conn:consume(quorum, { prefetch = 1 })
    for _ = 1, 2 do conn:nack(receive_one(conn), { requeue = true }) end
    conn:cancel(tag)
    conn:consume(parked)
    local dead = receive_one(conn)
    assert.equal("poison", dead.body)
    assert.equal("delivery_limit", dead.headers["x-death"][1].reason)
    conn:ack(dead)
    conn:queue_delete(parked)
  end)

  it("rejects with and without requeue, and unbinds", function()
    conn:publish(exchange, "event.r", "once")
    conn:consume(queue)
    conn:reject(receive_one(conn), { requeue = true })
    local again = receive_one(conn)
    assert.is_true(again.redelivered)
    conn:reject(again, { requeue = false })
    assert.is_nil(conn:receive(0.2))
    conn:queue_unbind(queue, exchange, "event.#")
    conn:publish(exchange, "event.r", "not routed any more")
    assert.is_nil(conn:receive(0.3))
  end)

  it("returns nil from receive when nothing arrives in time, and keeps the connection alive on heartbeats", function()
    local beating = amqp.connect(config.get("amqp_url") .. "?heartbeat=1")
    finally(function() beating:close() end)
    assert.equal(1, beating:status().heartbeat)
    beating:queue_declare(queue, { durable = false, auto_delete = true })
    beating:consume(queue)
    -- idle for more than two heartbeat intervals: the broker would close a silent connection
    local delivery, why = beating:receive(3.5)
    assert.is_nil(delivery)
    assert.is_nil(why)
    beating:publish(exchange, "event.beat", "alive")
    assert.equal("alive", receive_one(beating).body)
    assert.equal(0, beating:status().reconnections)
    assert.is_true(beating:status().connected)
  end)

  it("reports declaration errors with the broker's message and stays usable", function()
    assert.has_error(function() conn:queue_declare(queue, { durable = true }) end,
      "queue_declare: 406 PRECONDITION_FAILED - inequivalent arg 'durable' for queue '" .. queue ..
      "' in vhost 'silo': received 'true' but current is 'false'")
    assert.has_error(function() conn:queue_declare(unique("absent"), { passive = true }) end)
    conn:publish(exchange, "event.ok", "fine")
  end)

  it("refuses values a field table cannot hold", function()
    assert.has_error(function() conn:publish(exchange, "k", "x", { headers = { f = print } }) end,
      "amqp: a function cannot go in a field table")
    local deep = {}
    local t = deep
    for _ = 1, 40 do t.next = {}; t = t.next end
    assert.has_error(function() conn:publish(exchange, "k", "x", { headers = deep }) end,
      "amqp: field table nested deeper than 32 levels")
    assert.has_error(function() conn:publish(exchange, "k", "x", { headers = { [1.5] = 1, a = 1 } }) end,
      "amqp: a field table's keys must be strings, got a number")
    assert.has_error(function() conn:publish(exchange, "k", "x", { timestamp = "noon" }) end,
      "publish: timestamp must be a silo.datetime or seconds, got a string")
    assert.has_error(function() conn:publish_batch({ "not a table" }) end,
      "publish_batch: message 1 must be a table, got a string")
    assert.has_error(function() conn:publish_batch({ { exchange = exchange } }) end,
      "publish_batch: message 1 needs exchange, routing_key and body strings")
  end)

  it("refuses to ack something that is not a delivery or cancel an unknown consumer", function()
    assert.has_error(function() conn:ack({}) end, "ack: not a delivery from receive")
    assert.has_error(function() conn:cancel("nobody") end, "cancel: no consumer 'nobody' on this connection")
  end)

  it("names the server and the reason when it cannot connect", function()
    assert.has_error(function() amqp.connect(url_with(":5672/", ":1/")) end,
      "connect: cannot connect to amqp://guest:***@127.0.0.1:1/silo: a socket error occurred")
    assert.has_error(function() amqp.connect(url_with("//guest:guest@", "//guest:wrong@")) end,
      "connect: cannot connect to amqp://guest:***@127.0.0.1:5672/silo: 403 ACCESS_REFUSED - Login was " ..
      "refused using authentication mechanism PLAIN. For details see the broker logfile.")
    assert.has_error(function() amqp.connect("http://example") end, "connect: not an amqp:// or amqps:// URL: http://example")
    assert.has_error(function() amqp.connect(config.get("amqp_url") .. "?colour=blue") end,
      "connect: unknown URL option 'colour=blue' in amqp://guest:***@127.0.0.1:5672/silo")
    assert.has_error(function() amqp.connect(config.get("amqp_url") .. "?heartbeat") end,
      "connect: URL option 'heartbeat' needs a value in amqp://guest:***@127.0.0.1:5672/silo")
  end)

  it("speaks TLS for amqps:// and reports a failed handshake or a missing certificate", function()
    local tls = url_with("^amqp://", "amqps://")
    assert.has_error(function() amqp.connect(tls .. "?connection_timeout=3000") end)
    local ok, err = pcall(amqp.connect, tls .. "?cacertfile=/nonexistent/ca.pem")
    assert.is_false(ok)
    assert.equal("connect: cannot connect to amqps://guest:***@127.0.0.1:5672/silo: cannot read the CA " ..
      "certificate file /nonexistent/ca.pem", err)
  end)

  it("raises on a closed connection", function()
    local other = amqp.connect()
    other:close()
    assert.has_error(function() other:publish(exchange, "k", "x") end,
      "amqp: the connection to amqp://guest:***@127.0.0.1:5672/silo is closed")
    assert.matches("closed", tostring(other))
  end)
end)
