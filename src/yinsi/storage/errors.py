"""Storage errors, with messages for people in Chinese (面向使用者的中文错误信息)."""

from __future__ import annotations


class StorageError(Exception):
    """A problem with Yinsi's own database that a person can act on."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached (wrong host or port, server down, bad credentials)."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"无法连接数据库：{url}（{cause}）")


class InvalidDatabaseUrl(StorageError):
    """The URL is malformed, names an unknown backend, or its driver is not installed."""


class SchemaNotCurrent(StorageError):
    """The database schema is missing or older than this version of Yinsi expects."""

    def __init__(self, url: str, current: str | None, head: str) -> None:
        self.url = url
        self.current = current
        self.head = head
        state = "尚未初始化" if current is None else f"结构版本为 {current}"
        super().__init__(
            f"数据库{state}，本程序需要版本 {head}；请先运行：yinsi db upgrade --url {url}"
        )
