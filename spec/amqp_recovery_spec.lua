-- silo.amqp when the broker goes away: the only spec allowed to disrupt the shared RabbitMQ. Every test leaves
-- the broker running (start_app and the default memory watermark in a finally).
local amqp = require "silo.amqp"
local core = require "silo.core"

local function unique(what) return "spec.amqp.recovery." .. what .. "." .. core.random_hex(4) end

local function rabbitmqctl(arguments)
  local command = "rabbitmqctl " .. arguments .. " >/dev/null 2>&1"
  local status = os.execute(command)
  assert(status == 0 or status == true, "failed: " .. command)
end

local function in_background(arguments, delay)
  os.execute(string.format("(sleep %g; rabbitmqctl %s) >/dev/null 2>&1 &", delay, arguments))
end

local function broker_running_again()
  os.execute("rabbitmqctl start_app >/dev/null 2>&1")
  os.execute("rabbitmqctl await_startup >/dev/null 2>&1")
end

-- A durable exchange and queue declared on conn (and so restored by its reconnections).
local function declare(conn, names)
  conn:exchange_declare(names.exchange, "topic", { durable = true })
  conn:queue_declare(names.queue, { durable = true })
  conn:queue_bind(names.queue, names.exchange, "recovery.#")
end

local function publish_numbers(conn, names, from, to)
  for i = from, to do
    conn:publish(names.exchange, "recovery.n", tostring(i), { persistent = true, message_id = tostring(i) })
  end
end

-- Receives until every number in 1..count was seen (duplicates allowed: at-least-once). Returns how often
-- receive reported a reconnection; acks that fail because the delivery predates a reconnection are fine.
local function receive_all(consumer, count)
  local seen, missing, reconnections = {}, count, 0
  while missing > 0 do
    local delivery, why = consumer:receive(30)
    if why == "reconnected" then
      reconnections = reconnections + 1
    else
      assert(delivery, "no delivery within 30 s; still missing " .. missing)
      local n = tonumber(delivery.body)
      if not seen[n] then seen[n], missing = true, missing - 1 end
      local acked, err = pcall(consumer.ack, consumer, delivery)
      if not acked then assert.matches("came before the connection was re%-established", err) end
    end
  end
  return reconnections
end

local function cleanup(conn, names)
  pcall(conn.queue_delete, conn, names.queue)
  pcall(conn.exchange_delete, conn, names.exchange)
  conn:close()
end

describe("silo.amqp recovery", function()
  local names, publisher, consumer

  before_each(function()
    names = { exchange = unique("x"), queue = unique("q") }
    publisher = amqp.connect(nil, { reconnect_timeout = 60 })
    consumer = amqp.connect(nil, { reconnect_timeout = 60 })
    declare(publisher, names)
    declare(consumer, names)
    consumer:consume(names.queue, { prefetch = 10 })
  end)

  after_each(function()
    broker_running_again()
    cleanup(consumer, names)
    publisher:close()
  end)

  local function survives(disrupt)
    publish_numbers(publisher, names, 1, 50)
    local held = consumer:receive(10)
    assert.is_table(held)
    disrupt()
    publish_numbers(publisher, names, 51, 100)
    assert.is_true(publisher:status().reconnections >= 1)
    local reconnected, why = consumer:receive(30)
    while reconnected do reconnected, why = consumer:receive(30) end
    assert.equal("reconnected", why)
    assert.has_error(function() consumer:ack(held) end, "ack: delivery " .. held.delivery_tag ..
      " came before the connection was re-established; the broker redelivers it")
    receive_all(consumer, 100)
    assert.is_true(consumer:status().reconnections >= 1)
  end

  it("re-establishes connections the broker closed, restores the topology and loses no confirmed message", function()
    local gone = unique("gone")
    publisher:queue_declare(gone, { durable = false })
    publisher:queue_bind(gone, names.exchange, "recovery.#")
    publisher:queue_delete(gone)
    publisher:exchange_declare(gone, "fanout", { durable = false })
    publisher:exchange_delete(gone)
    survives(function() rabbitmqctl("close_all_connections -p silo 'silo-lua amqp recovery spec'") end)
    -- a deleted queue is not declared again by the reconnection
    assert.has_error(function() publisher:queue_declare(gone, { passive = true }) end,
      "queue_declare: 404 NOT_FOUND - no queue '" .. gone .. "' in vhost 'silo'")
    assert.has_error(function() publisher:exchange_declare(gone, "fanout", { passive = true }) end,
      "exchange_declare: 404 NOT_FOUND - no exchange '" .. gone .. "' in vhost 'silo'")
  end)

  it("raises when the recorded topology cannot be restored", function()
    local changed = unique("changed")
    publisher:queue_declare(changed, { durable = false })
    finally(function() pcall(consumer.queue_delete, consumer, changed) end)
    consumer:queue_delete(changed)
    consumer:queue_declare(changed, { durable = true }) -- meanwhile someone declared it differently
    rabbitmqctl("close_all_connections -p silo 'silo-lua amqp recovery spec'")
    assert.has_error(function() publisher:publish(names.exchange, "recovery.n", "x") end,
      "reconnect: restoring queue_declare failed: 406 PRECONDITION_FAILED - inequivalent arg 'durable' for " ..
      "queue '" .. changed .. "' in vhost 'silo': received 'false' but current is 'true'")
    assert.is_false(publisher:status().connected)
    assert.has_error(function() publisher:publish(names.exchange, "recovery.n", "x") end)
  end)

  it("rides out stop_app/start_app, and gives up after reconnect_timeout when told to", function()
    local impatient = amqp.connect(nil, { reconnect_timeout = 1 })
    finally(function() impatient:close() end)
    survives(function()
      finally(broker_running_again)
      rabbitmqctl("stop_app")
      local ok, err = pcall(impatient.publish, impatient, names.exchange, "recovery.n", "never")
      assert.is_false(ok)
      assert.matches("^reconnect: cannot reach amqp://guest:%*%*%*@127%.0%.0%.1:5672/silo: .* %(gave up after %d+ s%)$",
        err)
      in_background("start_app", 2)
    end)
  end)

  it("sends again what was published without waiting and unconfirmed when the connection is lost", function()
    finally(function() rabbitmqctl("set_vm_memory_high_watermark 0.4") end)
    rabbitmqctl("set_vm_memory_high_watermark 0.0000001") -- the broker stops taking publishes: none is confirmed
    local batch = {}
    for i = 1, 100 do
      batch[i] = { exchange = names.exchange, routing_key = "recovery.n", body = tostring(i), persistent = true }
    end
    publisher:publish_batch(batch, { wait = false })
    rabbitmqctl("close_all_connections -p silo 'silo-lua amqp recovery spec'")
    in_background("set_vm_memory_high_watermark 0.4", 2)
    publisher:wait_confirms()
    assert.is_true(publisher:status().reconnections >= 1)
    receive_all(consumer, 100)
  end)

  it("makes publish wait while the broker blocks publishers under memory pressure", function()
    finally(function() rabbitmqctl("set_vm_memory_high_watermark 0.4") end)
    rabbitmqctl("set_vm_memory_high_watermark 0.0000001")
    in_background("set_vm_memory_high_watermark 0.4", 2)
    local published = 0
    repeat
      published = published + 1
      publish_numbers(publisher, names, published, published)
    until publisher:status().times_blocked > 0 or published == 50
    assert.is_true(publisher:status().times_blocked > 0)
    assert.is_false(publisher:status().blocked)
    receive_all(consumer, published)
  end)
end)
