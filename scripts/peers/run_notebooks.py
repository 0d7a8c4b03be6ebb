"""Executes the notebooks headless against a running report API, so they never rot.

Usage: run_notebooks.py OUT_DIR NOTEBOOK...  (COSTCAST_API_URL and COSTCAST_API_TOKEN set).
Each notebook runs top to bottom in a fresh kernel (nbclient); a cell that raises fails the
run, naming the notebook and cell. The executed copies go to OUT_DIR; the committed notebooks
must carry no outputs, which this checks first."""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

out_dir, paths = sys.argv[1], sys.argv[2:]
os.makedirs(out_dir, exist_ok=True)
failed = False
for path in paths:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    if dirty:
        print(f"ERROR {path}: cells {dirty} carry outputs; strip them (nbstripout {path})")
        failed = True
        continue
    started = time.monotonic()
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": out_dir}})
    try:
        client.execute()
    except CellExecutionError as e:
        print(f"ERROR {path}: {str(e)[-3000:]}")
        failed = True
        continue
    finally:
        nbformat.write(nb, os.path.join(out_dir, os.path.basename(path)))
    images = sum(
        1 for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})
    )
    print(f"INFO {path}: {len(nb.cells)} cells ran in {time.monotonic() - started:.1f} s, {images} charts")
sys.exit(1 if failed else 0)
