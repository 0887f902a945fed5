"""kernelsplit: make a split kernel safe to upgrade.

Data flows one way: hardware (devices) -> modules (kmod) -> packages (repo
metadata) -> policy (a plan) -> dnf.
"""
