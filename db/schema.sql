-- The example app: a Songkick-like concert database. Every table has an integer primary key `id`, the feed's
-- messages carry it. Loaded by scripts/generate.lua (which drops and recreates these tables) and by the specs.

DROP TABLE IF EXISTS reviews, posters, videos, images, tickets, attendances, users, performances,
  events, event_series, artists, venues, cities;

CREATE TABLE cities (
  id      INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name    VARCHAR(100) NOT NULL,
  country VARCHAR(100) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE venues (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  city_id  INT UNSIGNED NOT NULL,
  name     VARCHAR(200) NOT NULL,
  capacity INT UNSIGNED NOT NULL,
  KEY (city_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE artists (
  id   INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(200) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A tour or a festival's editions: its name is part of an event's listing.
CREATE TABLE event_series (
  id   INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(200) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE events (
  id              INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  venue_id        INT UNSIGNED NOT NULL,
  event_series_id INT UNSIGNED NULL,
  date            DATE NOT NULL,
  status          ENUM('ok', 'cancelled', 'postponed') NOT NULL DEFAULT 'ok',
  KEY (venue_id),
  KEY (event_series_id),
  KEY (date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- An artist on an event's bill: headliners first, then supports, each in `position` order.
CREATE TABLE performances (
  id        INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id  INT UNSIGNED NOT NULL,
  artist_id INT UNSIGNED NOT NULL,
  billing   ENUM('headline', 'support') NOT NULL,
  position  SMALLINT UNSIGNED NOT NULL,
  KEY (event_id),
  KEY (artist_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE users (
  id         INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username   VARCHAR(100) NOT NULL,
  email      VARCHAR(200) NOT NULL,
  deleted    TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- "I'm going"
CREATE TABLE attendances (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id  INT UNSIGNED NOT NULL,
  event_id INT UNSIGNED NOT NULL,
  KEY (user_id),
  KEY (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE tickets (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id INT UNSIGNED NOT NULL,
  vendor   VARCHAR(100) NOT NULL,
  price    DECIMAL(8,2) NOT NULL,
  url      VARCHAR(300) NOT NULL,
  KEY (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE images (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id INT UNSIGNED NOT NULL,
  url      VARCHAR(300) NOT NULL,
  width    INT UNSIGNED NOT NULL,
  height   INT UNSIGNED NOT NULL,
  KEY (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE videos (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id INT UNSIGNED NOT NULL,
  url      VARCHAR(300) NOT NULL,
  KEY (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE posters (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id INT UNSIGNED NOT NULL,
  url      VARCHAR(300) NOT NULL,
  KEY (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE reviews (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id INT UNSIGNED NOT NULL,
  user_id  INT UNSIGNED NOT NULL,
  rating   TINYINT UNSIGNED NOT NULL,
  body     TEXT NOT NULL,
  KEY (event_id),
  KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
