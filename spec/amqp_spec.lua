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

-- A queue bound to exchange by pattern whose dead letters go to a dead-letter exchange and a parking queue.
-- Returns the queue's name and a function that receives (and acks) the next parked message.
local function declare_with_parking(conn, exchange, pattern, options)
  local dlx, parked, name = unique("dlx"), unique("parked"), unique("work")
  conn:exchange_declare(dlx, "fanout", { durable = false, auto_delete = true })
  conn:queue_declare(parked, { durable = false, auto_delete = true })
  conn:queue_bind(parked, dlx, "")
  options.arguments["x-dead-letter-exchange"] = dlx
  conn:queue_declare(name, options)
  finally(function() pcall(conn.queue_delete, conn, name) end)
  conn:queue_bind(name, exchange, pattern)
  return name, function()
    conn:consume(parked)
    local dead = receive_one(conn)
    conn:ack(dead)
    return dead
  end
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

  it("publishes batches without waiting, then waits once for every confirm, in order", function()
    for n = 0, 2 do
      local batch = {}
      for i = 1, 100 do batch[i] = { exchange = exchange, routing_key = "event.n", body = tostring(n * 100 + i) } end
      conn:publish_batch(batch, { wait = false })
    end
    conn:wait_confirms()
    conn:wait_confirms() -- nothing outstanding: returns at once
    local _, count = conn:queue_declare(queue, { durable = false, auto_delete = true })
    assert.equal(300, count)
    conn:consume(queue, { prefetch = 50 })
    for i = 1, 300 do
      local d = receive_one(conn)
      assert.equal(tostring(i), d.body)
      conn:ack(d)
    end
  end)

  it("raises a nack, a returned message or a closed channel of a batch sent without waiting at the wait", function()
    local full = unique("full")
    conn:queue_declare(full, { durable = false, auto_delete = true,
      arguments = { ["x-max-length"] = 1, ["x-overflow"] = "reject-publish" } })
    finally(function() conn:queue_delete(full) end)
    local no_wait = { wait = false }
    conn:publish_batch({ { exchange = "", routing_key = full, body = "fits" },
      { exchange = "", routing_key = full, body = "overflows" } }, no_wait)
    assert.has_error(function() conn:wait_confirms() end,
      "wait_confirms: the broker nacked 1 of 2 messages (not stored)")
    conn:publish_batch({ { exchange = exchange, routing_key = "nowhere", body = "x", mandatory = true } }, no_wait)
    assert.has_error(function() conn:wait_confirms() end, "wait_confirms: message returned by the broker: "
      .. "312 NO_ROUTE (exchange '" .. exchange .. "', routing key 'nowhere')")
    local missing = unique("missing")
    local closed = "channel 1 closed by the broker: 404 NOT_FOUND - no exchange '" .. missing .. "' in vhost 'silo'"
    conn:publish_batch({ { exchange = missing, routing_key = "k", body = "x" } }, no_wait)
    assert.has_error(function() conn:wait_confirms() end, "wait_confirms: " .. closed)
    -- a declaration waits for the confirms first; the channel closed meanwhile is raised by the next publish
    conn:publish_batch({ { exchange = missing, routing_key = "k", body = "x" } }, no_wait)
    conn:queue_declare(queue, { durable = false, auto_delete = true })
    assert.has_error(function()
      conn:publish_batch({ { exchange = exchange, routing_key = "event.lost", body = "not sent" } }, no_wait)
    end, "publish: " .. closed)
    conn:publish(exchange, "event.after", "still works")
    conn:consume(queue)
    assert.equal("still works", receive_one(conn).body)
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
    local work, next_parked = declare_with_parking(conn, exchange, "job.#",
      { durable = false, auto_delete = true, arguments = {} })
    conn:publish(exchange, "job.1", "fails")
    conn:consume(work, { prefetch = 1 })
    conn:nack(receive_one(conn), { requeue = true })
    local again = receive_one(conn)
    assert.is_true(again.redelivered)
    conn:nack(again, { requeue = false })
    local dead = next_parked()
    assert.equal("fails", dead.body)
    assert.equal("rejected", dead.headers["x-death"][1].reason)
    assert.equal(work, dead.headers["x-death"][1].queue)
  end)

  it("expires a message past its queue TTL into the dead-letter exchange", function()
    local _, next_parked = declare_with_parking(conn, exchange, "ttl.#",
      { durable = false, auto_delete = true, arguments = { ["x-message-ttl"] = 50 } })
    conn:publish(exchange, "ttl.soon", "too late", { message_id = "ttl-1" })
    local dead = next_parked()
    assert.equal("ttl-1", dead.message_id)
    assert.equal("ttl.soon", dead.routing_key)
    assert.equal("expired", dead.headers["x-death"][1].reason)
  end)

  it("declares a quorum queue whose delivery limit dead-letters a message redelivered too often", function()
    local quorum, next_parked = declare_with_parking(conn, exchange, "limit.#",
      { durable = true, arguments = { ["x-queue-type"] = "quorum", ["x-delivery-limit"] = 1 } })
    conn:publish(exchange, "limit.1", "poison")
    local tag = conn:consume(quorum, { prefetch = 1 })
    conn:nack(receive_one(conn), { requeue = true })
    local second = receive_one(conn)
    conn:cancel(tag)
    assert.has_error(function() conn:nack(second, { requeue = true }) end, "nack: consumer '" .. tag ..
      "' was cancelled; the broker requeued its delivery " .. second.delivery_tag)
    local dead = next_parked()
    assert.equal("poison", dead.body)
    assert.equal("delivery_limit", dead.headers["x-death"][1].reason)
  end)

  it("raises when the broker nacks a publish (a full queue that rejects publishes)", function()
    local full = unique("full")
    conn:queue_declare(full, { durable = false, auto_delete = true,
      arguments = { ["x-max-length"] = 1, ["x-overflow"] = "reject-publish" } })
    finally(function() conn:queue_delete(full) end)
    conn:publish("", full, "fits")
    assert.has_error(function() conn:publish("", full, "overflows") end,
      "publish: the broker nacked 1 of 1 messages (not stored)")
  end)

  it("tells the consumer when the broker cancels it, and refuses to consume a missing queue", function()
    local doomed = unique("doomed")
    conn:queue_declare(doomed, { durable = false })
    local tag = conn:consume(doomed)
    local other = amqp.connect()
    other:queue_delete(doomed)
    other:close()
    assert.has_error(function() conn:receive(10) end,
      "receive: the broker cancelled consumer '" .. tag .. "' (its queue was deleted?)")
    local missing = unique("missing")
    assert.has_error(function() conn:consume(missing) end,
      "consume: 404 NOT_FOUND - no queue '" .. missing .. "' in vhost 'silo'")
    conn:publish(exchange, "event.after", "usable")
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

  it("keeps an idle connection alive with heartbeats, and recovers one that missed them", function()
    local beating = amqp.connect(config.get("amqp_url") .. "?heartbeat=1")
    finally(function() beating:close() end)
    assert.equal(1, beating:status().heartbeat)
    beating:exchange_declare(exchange, "topic", { durable = false }) -- so that its reconnection restores it too
    local own = beating:queue_declare(nil, { durable = false, exclusive = true })
    assert.matches("^silo%.queue%.%x+$", own)
    beating:queue_bind(own, exchange, "event.#")
    beating:consume(own)
    -- idle inside receive for more than two heartbeat intervals: the broker would close a silent connection
    local delivery, why = beating:receive(3.5)
    assert.is_nil(delivery)
    assert.is_nil(why)
    beating:publish(exchange, "event.beat", "alive")
    assert.equal("alive", receive_one(beating).body)
    assert.equal(0, beating:status().reconnections)
    core.sleep(4) -- outside silo.amqp nobody answers the broker's heartbeats: it drops the connection
    local none, what, reason = beating:receive(10)
    assert.is_nil(none)
    assert.equal("reconnected", what)
    assert.is_string(reason)
    -- the exclusive queue came back under its name, with its binding and consumer
    beating:publish(exchange, "event.beat", "back")
    assert.equal("back", receive_one(beating).body)
    assert.equal(1, beating:status().reconnections)
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
    assert.has_error(function()
      conn:publish_batch({ { exchange = exchange, routing_key = "event.1", body = "good" },
        { exchange = exchange, routing_key = "event.2", body = "bad", headers = { f = print } } })
    end, "amqp: a function cannot go in a field table")
    local _, stored = conn:queue_declare(queue, { durable = false, auto_delete = true })
    assert.equal(0, stored) -- a batch with a bad message sends none
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

  describe("over TLS (amqps://, through a socat TLS proxy in front of the broker)", function()
    local dir, proxy_pid, tls

    local function run(command) assert(os.execute(command .. " >/dev/null 2>&1") == 0, "failed: " .. command) end
    local function self_signed(name, subject)
      run(string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=%s %s -keyout %s/%s.key " ..
        "-out %s/%s.pem", subject, subject == "127.0.0.1" and "-addext subjectAltName=IP:127.0.0.1,DNS:127.0.0.1" or "",
        dir, name, dir, name))
    end

    setup(function()
      dir = os.tmpname()
      os.remove(dir)
      run("mkdir -p " .. dir)
      self_signed("broker", "127.0.0.1")
      self_signed("stranger", "stranger")
      local port = 30000 + tonumber(core.random_hex(2), 16) % 10000
      local pipe = io.popen(string.format("socat openssl-listen:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s/broker.pem," ..
        "key=%s/broker.key,verify=0 tcp:127.0.0.1:5672 >/dev/null 2>&1 & echo $!", port, dir, dir))
      proxy_pid = assert(tonumber(pipe:read("*l")))
      pipe:close()
      tls = url_with(":5672/", ":" .. port .. "/"):gsub("^amqp://", "amqps://")
      for _ = 1, 50 do -- until the proxy listens
        if pcall(amqp.connect, tls .. "?verify=verify_none") then break end
        core.sleep(0.1)
      end
    end)

    teardown(function()
      os.execute("kill " .. proxy_pid)
      os.execute("rm -rf " .. dir)
    end)

    it("verifies the broker's certificate and carries messages", function()
      local secure = amqp.connect(tls .. "?cacertfile=" .. dir .. "/broker.pem&certfile=" .. dir ..
        "/stranger.pem&keyfile=" .. dir .. "/stranger.key")
      finally(function() secure:close() end)
      local own = secure:queue_declare(nil, { durable = false, exclusive = true })
      secure:publish("", own, "sealed")
      secure:consume(own)
      assert.equal("sealed", receive_one(secure).body)
    end)

    it("refuses a broker whose certificate it cannot verify, unless told not to verify", function()
      local shown = tls:gsub("guest:guest@", "guest:***@")
      assert.has_error(function() amqp.connect(tls .. "?cacertfile=" .. dir .. "/stranger.pem") end,
        "connect: cannot connect to " .. shown .. ": SSL peer cert verification failed")
      amqp.connect(tls .. "?verify=verify_none"):close()
    end)

    it("reports a plain-AMQP port, an unreadable CA file and an unreadable client certificate", function()
      local plain = url_with("^amqp://", "amqps://")
      assert.has_error(function() amqp.connect(plain .. "?connection_timeout=3000&verify=verify_none") end,
        "connect: cannot connect to amqps://guest:***@127.0.0.1:5672/silo: SSL handshake failed")
      assert.has_error(function() amqp.connect(tls .. "?cacertfile=/nonexistent/ca.pem") end,
        "connect: cannot connect to " .. tls:gsub("guest:guest@", "guest:***@") .. ": cannot read the CA " ..
        "certificate file /nonexistent/ca.pem")
      assert.has_error(function() amqp.connect(tls .. "?certfile=/nonexistent/c.pem&keyfile=/nonexistent/k.pem") end,
        "connect: cannot connect to " .. tls:gsub("guest:guest@", "guest:***@") .. ": cannot read the client " ..
        "certificate /nonexistent/c.pem or key /nonexistent/k.pem")
    end)
  end)

  it("raises on a closed connection", function()
    local other = amqp.connect()
    other:close()
    assert.has_error(function() other:publish(exchange, "k", "x") end,
      "amqp: the connection to amqp://guest:***@127.0.0.1:5672/silo is closed")
    assert.matches("closed", tostring(other))
  end)
end)
