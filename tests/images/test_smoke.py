"""Functional smoke tests: each package does its job in the image, not just imports.

Scripts run with the image's python3 under the executor's flags (read-only
root, no network, /tmp a tmpfs), so a package that needs a writable home or
the network fails here as it would in the sandbox.
"""

from __future__ import annotations

import json

import pytest

from tests.images.conftest import Sandbox

pytestmark = pytest.mark.docker

MAKE_PDF = """
from reportlab.lib.pagesizes import A4
from reportlab.platypus import SimpleDocTemplate, Paragraph, Table, TableStyle
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib import colors
doc = SimpleDocTemplate("/tmp/report.pdf", pagesize=A4)
table = Table([["item", "qty"], ["apple", "3"], ["pear", "5"]])
table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 1, colors.black)]))
doc.build([Paragraph("Conjure sandbox report", getSampleStyleSheet()["Title"]), table])
"""


@pytest.mark.needs(modules=("pandas", "openpyxl", "xlsxwriter"))
def test_pandas_writes_xlsx_with_both_engines_and_reads_it_back(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import pandas as pd
frame = pd.DataFrame({"item": ["apple", "pear"], "qty": [3, 5]})
for engine in ("openpyxl", "xlsxwriter"):
    path = f"/tmp/{engine}.xlsx"
    frame.to_excel(path, index=False, engine=engine)
    back = pd.read_excel(path, engine="openpyxl")
    assert back.equals(frame), (engine, back)
    print(engine, int(back["qty"].sum()))
"""
    )
    assert out.split("\n") == ["openpyxl 8", "xlsxwriter 8"]


@pytest.mark.needs(modules=("xlrd", "pandas"))
def test_xlrd_reads_an_xls_file(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import xlrd, pandas as pd
book = xlrd.open_workbook("/workspace/prices.xls")
sheet = book.sheet_by_index(0)
print(sheet.name, sheet.nrows, sheet.cell_value(2, 0))
print(pd.read_excel("/workspace/prices.xls", engine="xlrd")["qty"].sum())
"""
    )
    assert out.split("\n") == ["prices 4 pear", "15"]


@pytest.mark.needs(
    modules=("reportlab", "pypdf", "pdfplumber", "pypdfium2", "pdf2image"),
    commands=("qpdf", "pdftotext"),
)
def test_reportlab_pdf_read_by_every_pdf_tool(sandbox: Sandbox) -> None:
    out = sandbox.python(
        MAKE_PDF
        + """
import pypdf, pdfplumber, pypdfium2, pdf2image
text = pypdf.PdfReader("/tmp/report.pdf").pages[0].extract_text()
print("pypdf", "Conjure sandbox report" in text)
with pdfplumber.open("/tmp/report.pdf") as pdf:
    print("pdfplumber", pdf.pages[0].extract_tables()[0])
page = pypdfium2.PdfDocument("/tmp/report.pdf")[0]
print("pypdfium2", *page.render(scale=1).to_pil().size)
print("pdf2image", *pdf2image.convert_from_path("/tmp/report.pdf", dpi=50)[0].size)
"""
    )
    lines = out.split("\n")
    assert lines[0] == "pypdf True"
    assert lines[1] == "pdfplumber [['item', 'qty'], ['apple', '3'], ['pear', '5']]"
    # A4 is 595.3 x 841.9 points; renderers round either way.
    for line, (width, height) in zip(lines[2:4], [(595.3, 841.9), (413.4, 584.7)], strict=True):
        _, got_width, got_height = line.split()
        assert abs(int(got_width) - width) < 1, line
        assert abs(int(got_height) - height) < 1, line
    assert "No syntax or stream encoding errors found" in sandbox.sh("qpdf --check /tmp/report.pdf")
    assert "Conjure sandbox report" in sandbox.sh("pdftotext /tmp/report.pdf -")
    assert (
        sandbox.sh(
            "qpdf --empty --pages /tmp/report.pdf /tmp/report.pdf -- /tmp/two.pdf && "
            "qpdf --show-npages /tmp/two.pdf"
        )
        == "2"
    )


@pytest.mark.needs(modules=("tabula", "reportlab"), commands=("java",))
def test_tabula_extracts_a_table_through_java(sandbox: Sandbox) -> None:
    out = sandbox.python(
        MAKE_PDF
        + """
import tabula
(frame,) = tabula.read_pdf("/tmp/report.pdf", pages=1, lattice=True)
print(list(frame.columns), frame["qty"].tolist())
"""
    )
    assert out.splitlines()[-1] == "['item', 'qty'] [3, 5]"


@pytest.mark.needs(modules=("weasyprint", "pypdf"))
def test_weasyprint_renders_html_to_pdf(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import weasyprint, pypdf
html = "<h1>Invoice 42</h1><table><tr><td>apple</td><td>3</td></tr></table>"
weasyprint.HTML(string=html).write_pdf("/tmp/invoice.pdf")
print(pypdf.PdfReader("/tmp/invoice.pdf").pages[0].extract_text().split())
"""
    )
    assert out.splitlines()[-1] == "['Invoice', '42', 'apple', '3']"


@pytest.mark.needs(modules=("img2pdf", "PIL", "pypdf"))
def test_pillow_image_to_pdf_with_img2pdf(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
from PIL import Image, ImageDraw
import img2pdf, pypdf
image = Image.new("RGB", (200, 100), "white")
ImageDraw.Draw(image).rectangle((10, 10, 190, 90), outline="red", width=4)
image.save("/tmp/box.png")
with open("/tmp/box.pdf", "wb") as out:
    out.write(img2pdf.convert("/tmp/box.png"))
reader = pypdf.PdfReader("/tmp/box.pdf")
print(len(reader.pages), Image.open("/tmp/box.png").getpixel((10, 50)))
"""
    )
    assert out == "1 (255, 0, 0)"


@pytest.mark.needs(modules=("pptx", "docx"))
def test_pptx_and_docx_write_files_that_reopen(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
from pptx import Presentation
from docx import Document
deck = Presentation()
slide = deck.slides.add_slide(deck.slide_layouts[0])
slide.shapes.title.text = "Quarterly numbers"
deck.save("/workspace/deck.pptx")
print(Presentation("/workspace/deck.pptx").slides[0].shapes.title.text)
doc = Document()
doc.add_heading("Minutes", level=1)
doc.add_paragraph("All agreed.")
doc.save("/workspace/minutes.docx")
print([p.text for p in Document("/workspace/minutes.docx").paragraphs])
"""
    )
    assert out.split("\n") == ["Quarterly numbers", "['Minutes', 'All agreed.']"]
    assert (sandbox.work / "deck.pptx").stat().st_uid == 1000


@pytest.mark.needs(modules=("matplotlib", "PIL"))
def test_matplotlib_renders_a_png_headless(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image
figure, axes = plt.subplots(figsize=(4, 3), dpi=50)
axes.plot([1, 2, 3], [3, 1, 2])
axes.set_title("trend")
figure.savefig("/tmp/plot.png")
print(Image.open("/tmp/plot.png").size)
"""
    )
    assert out.splitlines()[-1] == "(200, 150)"


@pytest.mark.arm64
@pytest.mark.needs(modules=("pyarrow", "pandas", "numpy"))
def test_pyarrow_round_trips_parquet(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
frame = pd.DataFrame({"x": np.arange(1000), "y": np.linspace(0, 1, 1000)})
pq.write_table(pa.Table.from_pandas(frame), "/tmp/data.parquet")
back = pq.read_table("/tmp/data.parquet").to_pandas()
print(back.equals(frame), int(back["x"].sum()))
"""
    )
    assert out == "True 499500"


@pytest.mark.needs(modules=("bs4", "yaml", "requests"))
def test_bs4_yaml_and_requests(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import json, bs4, yaml, requests
soup = bs4.BeautifulSoup("<ul><li>a</li><li class=x>b</li></ul>", "html.parser")
data = {"items": [li.text for li in soup.find_all("li")], "x": soup.find(class_="x").text}
assert yaml.safe_load(yaml.safe_dump(data)) == data
prepared = requests.Request("GET", "https://example.invalid/q", params={"a": 1}).prepare()
print(json.dumps(data), prepared.url)
"""
    )
    assert out == '{"items": ["a", "b"], "x": "b"} https://example.invalid/q?a=1'


@pytest.mark.needs(commands=("node", "npm"))
def test_node_runs_a_script_and_npm_answers(sandbox: Sandbox) -> None:
    script = (
        "const fs = require('fs');"
        "fs.writeFileSync('/tmp/n.json', JSON.stringify({sum: [1, 2, 3].reduce((a, b) => a + b)}));"
        "console.log(fs.readFileSync('/tmp/n.json', 'utf8'))"
    )
    assert json.loads(sandbox.sh(f'node -e "{script}"')) == {"sum": 6}
    assert sandbox.sh("npm --version").split(".")[0].isdigit()
    assert sandbox.sh("npm config get cache") == "/tmp/.cache/npm"
    sandbox.sh("mkdir -p /tmp/proj && cd /tmp/proj && npm init -y >/dev/null")
    assert json.loads(sandbox.sh("cat /tmp/proj/package.json"))["name"] == "proj"


@pytest.mark.needs(commands=("git",))
def test_git_init_and_commit(sandbox: Sandbox) -> None:
    out = sandbox.sh(
        "cd /workspace && git init -q repo && cd repo && echo hi > a.txt && git add a.txt && "
        "git -c user.name=s -c user.email=s@x commit -qm first && git log --format=%s"
    )
    assert out == "first"


@pytest.mark.needs(commands=("jq",))
def test_jq_filters(sandbox: Sandbox) -> None:
    assert sandbox.sh("""echo '{"a":[1,2,3]}' | jq '.a | add'""") == "6"


@pytest.mark.needs(modules=("matplotlib",))
def test_matplotlib_starts_from_the_font_list_built_into_the_image(
    fresh_sandbox: Sandbox,
) -> None:
    out = fresh_sandbox.python(
        """
import glob, os, time
from matplotlib import font_manager
(cached,) = glob.glob(os.environ["MPLCONFIGDIR"] + "/fontlist-*.json")
(seed,) = glob.glob("/opt/matplotlib-cache/fontlist-*.json")
print(open(cached).read() == open(seed).read())
names = {f.name for f in font_manager.fontManager.ttflist}
print("DejaVu Sans" in names, "Liberation Sans" in names)
"""
    )
    assert out.split("\n") == ["True", "True True"]
