-- The feed's specs: a database of their own (silo_feed_spec), a table in it, an exchange and a queue of their own.
local amqp = require "silo.amqp"
local config = require "silo.config"
local core = require "silo.core"
local json = require "silo.json"
local mysql = require "silo.mysql"

local support = {}

support.DATABASE = "silo_feed_spec"

-- The configured MySQL URL, pointed at database.
function support.url_for(database)
  return (config.get("mysql_url"):gsub("^(mysql://[^/]*/)[^?]*", "%1" .. database))
end

-- A table feed_rows_<random> in silo_feed_spec and the model the feed observes for it.
function support.open_table()
  local admin = mysql.connect(config.get("mysql_url"))
  admin:exec("CREATE DATABASE IF NOT EXISTS " .. support.DATABASE)
  admin:close()
  local db = mysql.connect(support.url_for(support.DATABASE))
  local table_name = "feed_rows_" .. core.random_hex(4)
  db:exec("CREATE TABLE " .. table_name .. " (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
    .. "amount DECIMAL(10,2) NULL, seen_at DATETIME NULL) ENGINE=InnoDB")
  return db, table_name, { name = "FeedRow", table = table_name, primary_key = "id" }
end

-- A fresh exchange with a durable queue bound to every routing key.
function support.open_queue()
  local broker = amqp.connect(config.get("amqp_url"))
  local suffix = core.random_hex(4)
  local exchange, queue = "silo.feed.spec." .. suffix, "silo.feed.spec.q." .. suffix
  broker:exchange_declare(exchange, "topic", { durable = true })
  broker:queue_declare(queue, { durable = true })
  broker:queue_bind(queue, exchange, "#")
  broker:consume(queue, { prefetch = 500 })
  return broker, exchange, queue
end

-- Every message that arrives until none came for quiet seconds: { { key =, id =, body = decoded }, ... }.
function support.drain(broker, quiet)
  local received = {}
  while true do
    local delivery = broker:receive(quiet or 1)
    if not delivery then return received end
    received[#received + 1] = {
      key = delivery.routing_key, id = delivery.message_id, body = json.decode(delivery.body),
      persistent = delivery.persistent, content_type = delivery.content_type,
    }
    broker:ack(delivery)
  end
end

function support.cleanup(db, table_name, broker, exchange, queue)
  if db then db:exec("DROP TABLE IF EXISTS " .. table_name) end
  if broker then
    broker:queue_delete(queue)
    broker:exchange_delete(exchange)
    broker:close()
  end
end

return support
