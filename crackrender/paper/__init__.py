"""The paper's Tables 1-3 reproduced: row configs (configs/paper/), the printed numbers, and
``crackrender tables N`` which trains, scores and times every row and writes markdown beside
the paper's numbers. See docs/paper_tables.md."""

from crackrender.paper.runner import run_table
from crackrender.paper.tables import TABLES, Column, Row, Table, get_table

__all__ = ["TABLES", "Column", "Row", "Table", "get_table", "run_table"]
