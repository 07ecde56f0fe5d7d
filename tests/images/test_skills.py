"""The document skills' workflows, each under the executor's flags, checked by their results.

Our own tests of what the public pdf, docx, xlsx and pptx skills do with the
image: LibreOffice conversions and formula recalculation, thumbnails, pandoc
with tracked changes, markitdown, docx-js and pptxgenjs, OCR, XSD validation
of an unpacked .docx and PDF forms. Tests that depend on a tool's first use
get a container of their own (``fresh_sandbox``).
"""

from __future__ import annotations

import shutil

import pytest

from benchmarks.images import RECALC_MACRO, RECALC_MACRO_URL
from tests.images.conftest import FIXTURES, Sandbox

pytestmark = pytest.mark.docker

MAKE_DOCX = """
from docx import Document
doc = Document()
doc.add_heading("Quarterly memo", level=1)
doc.add_paragraph("Revenue grew in every region.")
doc.save("/workspace/memo.docx")
"""

MAKE_PPTX = """
from pptx import Presentation
deck = Presentation()
for title in ("Roadmap review", "Next steps"):
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = title
    slide.placeholders[1].text = f"Notes on {title.lower()}"
deck.save("/workspace/deck.pptx")
"""


@pytest.mark.arm64
@pytest.mark.needs(commands=("soffice", "pdftotext"), modules=("docx",))
def test_docx_to_pdf_with_soffice_on_first_use(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    box.python(MAKE_DOCX)
    box.sh("cd /workspace && soffice --headless --convert-to pdf --outdir /workspace memo.docx")
    text = box.sh("pdftotext /workspace/memo.pdf -")
    assert "Quarterly memo" in text
    assert "Revenue grew in every region." in text
    # The profile LibreOffice made on first use is on the tmpfs, under $HOME.
    assert box.sh("test -d /tmp/.config/libreoffice/4/user && echo profile") == "profile"


@pytest.mark.needs(commands=("soffice",), modules=("openpyxl",))
def test_formulas_recalculated_by_a_basic_macro_in_headless_calc(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    before = box.python(
        """
from openpyxl import Workbook, load_workbook
book = Workbook()
sheet = book.active
sheet["A1"], sheet["A2"] = 6, 7
sheet["A3"] = "=A1*A2"
sheet["A4"] = "=SUM(A1:A3)"
sheet["B1"] = '=IF(A3>40,"big","small")'
book.save("/workspace/book.xlsx")
values = load_workbook("/workspace/book.xlsx", data_only=True).active
print([values[c].value for c in ("A3", "A4", "B1")])
"""
    )
    assert before == "[None, None, None]"  # openpyxl writes formulas, never their values
    # As the xlsx skill does: start once so the profile exists, then put the macro in it.
    box.sh("soffice --headless --terminate_after_init")
    standard = "$XDG_CONFIG_HOME/libreoffice/4/user/basic/Standard"
    box.sh(
        f'test -f "{standard}/script.xlb" && cat > "{standard}/Module1.xba" <<\'EOF\'\n'
        f"{RECALC_MACRO}EOF"
    )
    box.sh(f"timeout 60 soffice --headless --norestore '{RECALC_MACRO_URL}' /workspace/book.xlsx")
    after = box.python(
        """
from openpyxl import load_workbook
values = load_workbook("/workspace/book.xlsx", data_only=True).active
print([values[c].value for c in ("A3", "A4", "B1")])
formulas = load_workbook("/workspace/book.xlsx").active
print(formulas["A3"].value)
"""
    )
    assert after.split("\n") == ["[42, 55, 'big']", "=A1*A2"]


@pytest.mark.needs(commands=("soffice", "pdftoppm", "pdftotext"), modules=("pptx", "PIL"))
def test_pptx_to_pdf_to_png_thumbnails(sandbox: Sandbox) -> None:
    sandbox.python(MAKE_PPTX)
    sandbox.sh("soffice --headless --convert-to pdf --outdir /tmp/slides /workspace/deck.pptx")
    assert "Roadmap review" in sandbox.sh("pdftotext /tmp/slides/deck.pdf -")
    sandbox.sh("pdftoppm -png -r 40 /tmp/slides/deck.pdf /tmp/slides/thumb")
    out = sandbox.python(
        """
import glob
from PIL import Image
for path in sorted(glob.glob("/tmp/slides/thumb-*.png")):
    image = Image.open(path)
    dark = sum(1 for p in image.convert("L").getdata() if p < 128)
    print(path.rsplit("/", 1)[1], *image.size, dark > 50)
"""
    )
    # python-pptx's default slide is 10 x 7.5 inches: 400 x 300 pixels at 40 dpi.
    assert out.split("\n") == ["thumb-1.png 400 300 True", "thumb-2.png 400 300 True"]


@pytest.mark.arm64
@pytest.mark.needs(commands=("pandoc",), modules=("docx",))
def test_pandoc_shows_tracked_changes(sandbox: Sandbox) -> None:
    sandbox.python(
        """
from docx import Document
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
stamp = 'w:author="Reviewer" w:date="2026-01-05T10:00:00Z"'
doc = Document()
paragraph = doc.add_paragraph("The fee is ")
paragraph._p.append(parse_xml(
    f'<w:del {nsdecls("w")} w:id="1" {stamp}><w:r><w:delText>thirty</w:delText></w:r></w:del>'))
paragraph._p.append(parse_xml(
    f'<w:ins {nsdecls("w")} w:id="2" {stamp}><w:r><w:t>forty</w:t></w:r></w:ins>'))
doc.save("/workspace/tracked.docx")
"""
    )
    shown = sandbox.sh("pandoc --track-changes=all -t markdown /workspace/tracked.docx")
    assert "[thirty]{.deletion" in shown
    assert "[forty]{.insertion" in shown
    assert 'author="Reviewer"' in shown
    accepted = sandbox.sh("pandoc --track-changes=accept -t plain /workspace/tracked.docx")
    assert accepted == "The fee is forty"


@pytest.mark.needs(modules=("markitdown", "pptx"))
def test_markitdown_extracts_a_pptx(sandbox: Sandbox) -> None:
    # Not in the emulated arm64 session: under this machine's qemu-user 7.2 onnxruntime
    # (magika's, which markitdown imports) segfaults while loading, probably because the
    # /proc/cpuinfo it reads there is the x86 host's. Native arm64 runners run it.
    sandbox.python(MAKE_PPTX)
    markdown = sandbox.sh("cd /workspace && python3 -m markitdown deck.pptx 2>/tmp/md.err")
    for text in ("Roadmap review", "Notes on roadmap review", "Next steps"):
        assert text in markdown
    assert sandbox.sh("cat /tmp/md.err") == ""


DOCX_JS = """
const fs = require("fs");
const { Document, Packer, Paragraph, TextRun, HeadingLevel } = require("docx");
const doc = new Document({ sections: [{ children: [
  new Paragraph({ text: "Board minutes", heading: HeadingLevel.HEADING_1 }),
  new Paragraph({ children: [new TextRun({ text: "Budget approved", bold: true })] }),
] }] });
Packer.toBuffer(doc).then((buffer) => fs.writeFileSync("/workspace/minutes-js.docx", buffer));
"""

PPTXGENJS = """
const PptxGenJS = require("pptxgenjs");
const deck = new PptxGenJS();
deck.addSlide().addText("Revenue up 12%", { x: 1, y: 1, w: 8, h: 1, fontSize: 28 });
deck.addSlide().addText("Hiring plan", { x: 1, y: 1, w: 8, h: 1 });
deck.writeFile({ fileName: "/workspace/deck-js.pptx" });
"""


def _run_node(sandbox: Sandbox, script: str) -> None:
    """Run ``script`` with node from /workspace, as a skill's own script would run."""
    sandbox.sh(f"cat > /tmp/script.js <<'EOF'\n{script}EOF\ncd /workspace && node /tmp/script.js")


def _xml_text(sandbox: Sandbox, archive: str, member: str) -> str:
    """The text nodes of one part of an Office file, read with the standard library only."""
    return sandbox.python(
        f"""
import zipfile, xml.etree.ElementTree as ET
root = ET.fromstring(zipfile.ZipFile("{archive}").read("{member}"))
print("|".join(t.text for t in root.iter() if t.tag.rsplit("}}", 1)[-1] == "t" and t.text))
"""
    )


@pytest.mark.needs(node_modules=("docx",))
def test_docx_js_writes_a_document(sandbox: Sandbox) -> None:
    _run_node(sandbox, DOCX_JS)
    written = "/workspace/minutes-js.docx"
    assert _xml_text(sandbox, written, "word/document.xml") == "Board minutes|Budget approved"
    assert (sandbox.work / "minutes-js.docx").stat().st_uid == 1000


@pytest.mark.arm64
@pytest.mark.needs(node_modules=("docx",), modules=("docx",))
def test_docx_js_document_read_back_by_python_docx(sandbox: Sandbox) -> None:
    _run_node(sandbox, DOCX_JS)
    out = sandbox.python(
        """
from docx import Document
doc = Document("/workspace/minutes-js.docx")
heading, body = doc.paragraphs
print(heading.text, "/", heading.style.name, "/", body.text, "/", body.runs[0].bold)
"""
    )
    assert out == "Board minutes / Heading 1 / Budget approved / True"


@pytest.mark.needs(node_modules=("pptxgenjs",))
def test_pptxgenjs_writes_a_presentation(sandbox: Sandbox) -> None:
    _run_node(sandbox, PPTXGENJS)
    assert _xml_text(sandbox, "/workspace/deck-js.pptx", "ppt/slides/slide1.xml") == (
        "Revenue up 12%"
    )


@pytest.mark.needs(node_modules=("pptxgenjs",), modules=("pptx",))
def test_pptxgenjs_presentation_read_back_by_python_pptx(sandbox: Sandbox) -> None:
    _run_node(sandbox, PPTXGENJS)
    out = sandbox.python(
        """
from pptx import Presentation
deck = Presentation("/workspace/deck-js.pptx")
for slide in deck.slides:
    print("|".join(s.text_frame.text for s in slide.shapes if s.has_text_frame))
"""
    )
    assert out.split("\n") == ["Revenue up 12%", "Hiring plan"]


@pytest.mark.arm64
@pytest.mark.needs(commands=("tesseract",), modules=("pytesseract", "pdf2image", "reportlab"))
def test_ocr_of_a_rendered_pdf_page(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
from reportlab.pdfgen import canvas
import pdf2image, pytesseract
page = canvas.Canvas("/tmp/scan.pdf")
page.setFont("Helvetica", 36)
page.drawString(72, 700, "Invoice number 4711")
page.drawString(72, 640, "Total due 250 EUR")
page.save()
(image,) = pdf2image.convert_from_path("/tmp/scan.pdf", dpi=150)
print(" ".join(pytesseract.image_to_string(image.convert("L")).split()))
"""
    )
    assert "Invoice number 4711" in out
    assert "Total due 250 EUR" in out


@pytest.mark.needs(modules=("lxml", "defusedxml", "docx"))
def test_unpacked_docx_validates_against_an_xsd_with_lxml(sandbox: Sandbox) -> None:
    shutil.copy(FIXTURES / "wordml-subset.xsd", sandbox.work / "wordml-subset.xsd")
    sandbox.python(MAKE_DOCX)
    out = sandbox.python(
        """
import pathlib, zipfile
import defusedxml.minidom
from lxml import etree
unpacked = pathlib.Path("/tmp/unpacked")
zipfile.ZipFile("/workspace/memo.docx").extractall(unpacked)
part = unpacked / "word" / "document.xml"
part.write_bytes(defusedxml.minidom.parse(str(part)).toprettyxml(encoding="utf-8"))
schema = etree.XMLSchema(etree.parse("/workspace/wordml-subset.xsd"))
tree = etree.parse(str(part))
print("valid", schema.validate(tree))
body = tree.getroot()[0]
body.insert(0, etree.Element(body.tag.replace("body", "bogus")))
print("broken", schema.validate(tree), "bogus" in str(schema.error_log.last_error))
"""
    )
    assert out.split("\n") == ["valid True", "broken False True"]


@pytest.mark.needs(modules=("pypdf", "reportlab"))
def test_fillable_pdf_form_read_and_filled_with_pypdf(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
from reportlab.pdfgen import canvas
from pypdf import PdfReader, PdfWriter
form = canvas.Canvas("/tmp/form.pdf")
form.drawString(72, 720, "Name")
form.acroForm.textfield(name="applicant", x=130, y=710, width=200, height=20)
form.drawString(72, 680, "City")
form.acroForm.textfield(name="city", x=130, y=670, width=200, height=20)
form.save()
reader = PdfReader("/tmp/form.pdf")
print(sorted(reader.get_fields()))
writer = PdfWriter(clone_from=reader)
writer.update_page_form_field_values(
    writer.pages[0], {"applicant": "Ada Lovelace", "city": "London"}, auto_regenerate=False
)
writer.write("/workspace/filled.pdf")
filled = PdfReader("/workspace/filled.pdf").get_fields()
print(filled["applicant"].get("/V"), "/", filled["city"].get("/V"))
"""
    )
    assert out.split("\n") == ["['applicant', 'city']", "Ada Lovelace / London"]


@pytest.mark.needs(modules=("pandas", "matplotlib", "pyarrow"))
def test_cold_data_imports_write_nothing_to_stderr(fresh_sandbox: Sandbox) -> None:
    """The first heavy import in a fresh read-only container writes no warning."""
    result = fresh_sandbox.sh(
        "python3 -c 'import pandas, matplotlib.pyplot, pyarrow' 2>&1 >/dev/null; echo done"
    )
    assert result == "done"
