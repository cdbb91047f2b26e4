"""Tables (markdown / CSV in the paper's Table 1 layout) and PNG plots of benchmark runs."""
from robustpose.reports.plots import write_plots
from robustpose.reports.tables import csv_table, markdown_table, write_tables

__all__ = ["write_plots", "write_tables", "markdown_table", "csv_table"]
