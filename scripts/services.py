"""Make sure PostgreSQL and Redis answer for the second half of the test run.

Starts either one if it is installed but down (with the commands this project's
machines use), creates the test database if it is missing, and exits 1 if
either one still cannot be reached. Usage: services.py POSTGRES_URL REDIS_URL
"""

import glob
import os
import shutil
import subprocess
import sys
import time

import psycopg
import redis
from sqlalchemy.engine import make_url

START_POSTGRES = [
    ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
    for version in sorted(os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else [])
]
START_REDIS = [
    [
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "-::1",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/var/lib/redis",
        "--logfile",
        "/var/log/redis/ci.log",
    ],
]


def retry(check, starts, name, attempts=40):
    if check():
        return True
    for command in starts:
        if shutil.which(command[0]) or glob.glob(command[0]):
            print(f"{name} is down; starting it: {' '.join(command)}", flush=True)
            subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    for _ in range(attempts if starts else 1):
        if check():
            return True
        time.sleep(0.5)
    print(f"{name} cannot be reached.", file=sys.stderr)
    return False


def postgres_check(url):
    def check():
        try:
            with psycopg.connect(conninfo(url, "postgres"), connect_timeout=3):
                return True
        except psycopg.OperationalError:
            return False

    return check


def conninfo(url, database):
    parts = make_url(url).set(drivername="postgresql", database=database)
    return parts.render_as_string(hide_password=False)


def ensure_database(url):
    name = make_url(url).database
    with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not found.fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def redis_check(url):
    def check():
        try:
            return redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        except redis.exceptions.ConnectionError:
            return False

    return check


def main(postgres_url, redis_url):
    postgres_up = retry(postgres_check(postgres_url), START_POSTGRES, "PostgreSQL")
    redis_up = retry(redis_check(redis_url), START_REDIS, "Redis")
    if not (postgres_up and redis_up):
        return 1
    ensure_database(postgres_url)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
