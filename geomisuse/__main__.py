"""python -m geomisuse"""
from .cli import main

main()
