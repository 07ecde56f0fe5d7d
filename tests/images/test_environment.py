"""Anthropic's documented code-execution environment and the other public skills, by results.

Our own tests of what Claude's code and the public skills beyond the document
four do with the image: the science stack, OpenCV, reportlab's cairo renderer,
the command-line tools, the named fonts, a GIF (slack-gif-creator), a browser
screenshot (webapp-testing), an MCP server (mcp-builder) and the Anthropic SDKs
(claude-api). Everything runs under the executor's flags, with no network:
servers the workflows need listen on loopback inside the container.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.images import SCREENSHOT
from tests.images.conftest import Sandbox

pytestmark = pytest.mark.docker


@pytest.mark.arm64
@pytest.mark.needs(modules=("imageio", "PIL", "numpy"))
def test_imageio_writes_an_animated_gif_whose_frames_differ(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import imageio.v3 as iio
import numpy as np
from PIL import Image
frames = []
for step in range(6):
    frame = np.zeros((64, 64, 3), dtype=np.uint8)
    frame[:, step * 10:step * 10 + 10] = (255, 200, 0)
    frames.append(frame)
iio.imwrite("/workspace/moving.gif", frames, duration=80, loop=0)
gif = Image.open("/workspace/moving.gif")
seen = []
for index in range(gif.n_frames):
    gif.seek(index)
    seen.append(np.asarray(gif.convert("RGB")))
print(gif.n_frames, gif.size, sum(not np.array_equal(a, b) for a, b in zip(seen, seen[1:])))
print(int(seen[0][:, :10].mean() > 100), int(seen[0][:, 30:].mean() < 10))
"""
    )
    assert out.split("\n") == ["6 (64, 64) 5", "1 1"]


@pytest.mark.arm64
@pytest.mark.needs(modules=("scipy",))
def test_scipy_optimizes_and_tests(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
from scipy import optimize, stats
best = optimize.minimize(lambda v: (v[0] - 3) ** 2 + (v[1] + 1) ** 2 + 2, [0, 0])
root = optimize.brentq(lambda x: x ** 3 - 8, 0, 5)
t = stats.ttest_ind([5.1, 4.9, 5.0, 5.2, 5.0], [6.0, 6.1, 5.9, 6.2, 6.0])
print(round(best.x[0], 4), round(best.x[1], 4), round(best.fun, 6), round(root, 6))
print(round(stats.norm.cdf(1.96), 4), t.pvalue < 1e-5)
"""
    )
    assert out.split("\n") == ["3.0 -1.0 2.0 2.0", "0.975 True"]


@pytest.mark.needs(modules=("sklearn", "numpy"))
def test_scikit_learn_fits_and_predicts(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
x = np.arange(20, dtype=float).reshape(-1, 1)
line = LinearRegression().fit(x, 4 * x.ravel() + 7)
classes = LogisticRegression().fit(x, (x.ravel() >= 10).astype(int))
print(round(line.coef_[0], 6), round(line.intercept_, 6), round(line.predict([[100]])[0], 4))
print(classes.predict([[2], [17]]).tolist())
"""
    )
    assert out.split("\n") == ["4.0 7.0 407.0", "[0, 1]"]


@pytest.mark.needs(modules=("statsmodels", "numpy"))
def test_statsmodels_ols_summary(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import numpy as np
import statsmodels.api as sm
rng = np.random.default_rng(7)
x = rng.normal(size=200)
y = 2.5 * x + 1.0 + rng.normal(scale=0.1, size=200)
fit = sm.OLS(y, sm.add_constant(x)).fit()
summary = fit.summary().as_text()
print(abs(fit.params[1] - 2.5) < 0.05, abs(fit.params[0] - 1.0) < 0.05, fit.rsquared > 0.99)
print("OLS Regression Results" in summary, "R-squared" in summary)
"""
    )
    assert out.split("\n") == ["True True True", "True True"]


@pytest.mark.needs(modules=("seaborn", "PIL"))
def test_seaborn_saves_a_plot_as_png(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import pandas as pd
import seaborn as sns
from PIL import Image
data = pd.DataFrame({"group": ["a", "b", "c"], "value": [3, 7, 5]})
axes = sns.barplot(data=data, x="group", y="value", color="#1f4e99")
axes.figure.savefig("/workspace/bars.png", dpi=50)
image = Image.open("/workspace/bars.png").convert("RGB")
blue = sum(1 for p in image.getdata() if p[2] > 120 and p[0] < 80)
print(image.format or "PNG", [round(b.get_height()) for b in axes.patches], blue > 500)
"""
    )
    assert out == "PNG [3, 7, 5] True"


@pytest.mark.needs(modules=("sympy", "mpmath"))
def test_sympy_solves_and_mpmath_computes(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import mpmath, sympy
x = sympy.symbols("x")
print(sorted(sympy.solve(x ** 2 - 5 * x + 6, x)), sympy.integrate(2 * x, (x, 0, 3)))
mpmath.mp.dps = 30
print(mpmath.nstr(mpmath.sqrt(2), 20))
"""
    )
    assert out.split("\n") == ["[2, 3] 9", "1.4142135623730950488"]


@pytest.mark.arm64
@pytest.mark.needs(modules=("cv2", "numpy"))
def test_opencv_filters_an_image(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
import cv2
import numpy as np
image = np.zeros((50, 50), dtype=np.uint8)
image[20:30, 20:30] = 255
cv2.imwrite("/workspace/square.png", image)
read = cv2.imread("/workspace/square.png", cv2.IMREAD_GRAYSCALE)
blurred = cv2.GaussianBlur(read, (5, 5), 0)
edges = cv2.Canny(read, 100, 200)
print(read.shape, int(read.sum() // 255), int(blurred[25, 25]), 0 < int(blurred[19, 25]) < 255)
print(int(edges.max()), int(edges[25, 25]))
"""
    )
    assert out.split("\n") == ["(50, 50) 100 255 True", "255 0"]


@pytest.mark.arm64
@pytest.mark.needs(modules=("reportlab", "rlPyCairo", "cairo", "PIL"))
def test_reportlab_draws_a_png_through_pycairo(sandbox: Sandbox) -> None:
    out = sandbox.python(
        """
from PIL import Image
from reportlab import rl_config
from reportlab.graphics import renderPM
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
drawing = Drawing(120, 80)
drawing.add(Rect(10, 10, 60, 40, fillColor=colors.red, strokeColor=None))
drawing.add(String(10, 60, "chart", fontSize=12))
renderPM.drawToFile(drawing, "/workspace/chart.png", fmt="PNG", dpi=72)
image = Image.open("/workspace/chart.png").convert("RGB")
# reportlab's y axis points up: the rectangle is at the bottom left of the PNG.
print(rl_config.renderPMBackend, image.size, image.getpixel((30, 50)), image.getpixel((100, 50)))
"""
    )
    assert out == "rlPyCairo (120, 80) (255, 0, 0) (255, 255, 255)"


@pytest.mark.arm64
@pytest.mark.needs(commands=("zip", "unzip", "7z"))
def test_zip_round_trip_and_a_7z_archive(sandbox: Sandbox) -> None:
    out = sandbox.sh(
        """
set -e
mkdir -p /tmp/arc/in/sub && cd /tmp/arc
seq 1 5000 > in/numbers.txt && echo nested > in/sub/note.txt
zip -qr bundle.zip in && rm -rf out && unzip -q bundle.zip -d out
cmp in/numbers.txt out/in/numbers.txt && cat out/in/sub/note.txt
7z a -bd -bso0 bundle.7z in >/dev/null && 7z l -ba bundle.7z | awk '{print $NF}' | sort
rm -rf x && 7z x -bd -bso0 -ox bundle.7z >/dev/null && cmp in/numbers.txt x/in/numbers.txt
echo same
"""
    )
    assert out.split("\n") == [
        "nested",
        "in",
        "in/numbers.txt",
        "in/sub",
        "in/sub/note.txt",
        "same",
    ]


@pytest.mark.arm64
@pytest.mark.needs(commands=("rg", "fd", "sqlite3", "bc"))
def test_rg_fd_sqlite3_and_bc_do_real_work(sandbox: Sandbox) -> None:
    sandbox.sh(
        "mkdir -p /tmp/tree/a/b /tmp/tree/c && echo 'needle = 42' > /tmp/tree/a/b/planted.cfg"
        " && echo 'hay' > /tmp/tree/c/other.cfg"
    )
    assert sandbox.sh("rg -l 'needle = \\d+' /tmp/tree") == "/tmp/tree/a/b/planted.cfg"
    assert sandbox.sh("fd --type f planted /tmp/tree") == "/tmp/tree/a/b/planted.cfg"
    assert sandbox.sh("cd /tmp/tree && fd -e cfg | sort") == "a/b/planted.cfg\nc/other.cfg"
    query = (
        "create table sales(region text, amount int);"
        " insert into sales values ('north', 5), ('south', 7), ('north', 4);"
        " select region, sum(amount) from sales group by region order by region;"
    )
    assert sandbox.sh(f'sqlite3 /tmp/sales.db "{query}"') == "north|9\nsouth|7"
    assert sandbox.sh("echo 'scale=10; 4*a(1)' | bc -l") == "3.1415926532"
    assert sandbox.sh("echo '2^64' | bc") == "18446744073709551616"


@pytest.mark.needs(
    commands=("soffice", "pdftotext"), modules=("docx",), fonts=("FreeSans", "Poppins", "Lora")
)
def test_a_pdf_rendered_with_freesans_and_poppins_embeds_them(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    box.python(
        """
from docx import Document
doc = Document()
for family in ("FreeSans", "Poppins", "Lora"):
    doc.add_paragraph().add_run(f"Set in {family}").font.name = family
doc.save("/workspace/fonts.docx")
"""
    )
    box.sh("cd /workspace && soffice --headless --convert-to pdf --outdir /workspace fonts.docx")
    # pdffonts (poppler-utils, as pdftotext) lists each embedded subset as ABCDEF+Family-Style.
    listed = box.sh("pdffonts /workspace/fonts.pdf | tail -n +3 | awk '{print $1}'").split()
    embedded = {name.split("+", 1)[-1].split("-")[0] for name in listed}
    assert {"FreeSans", "Poppins", "Lora"} <= embedded, listed
    assert "Set in Poppins" in box.sh("pdftotext /workspace/fonts.pdf -")


@pytest.mark.arm64
@pytest.mark.needs(modules=("playwright",), commands=("chromium-headless-shell",))
def test_playwright_finds_debians_headless_shell_where_it_would_download_its_own(
    sandbox: Sandbox,
) -> None:
    """The wiring, on every platform: Playwright's own answer for where its headless shell
    lives leads to Debian's, which runs. (The screenshot below is not in the emulated arm64
    session: under this machine's qemu-user, Chromium's child processes segfault.)"""
    location = sandbox.sh(
        "playwright install --dry-run chromium-headless-shell"
        " | sed -n '/Install location:/{s/^ *Install location: *//p;q}'"
    )
    linked = sandbox.sh(
        f"readlink -f {location}/chrome-headless-shell-linux*/chrome-headless-shell"
    )
    assert linked == "/usr/lib/chromium/chromium-headless-shell"
    assert sandbox.sh(f"{linked} --version").startswith("Chromium ")


@pytest.mark.needs(modules=("playwright", "PIL"), commands=("chromium-headless-shell",))
def test_playwright_screenshots_a_loopback_page_on_first_use(fresh_sandbox: Sandbox) -> None:
    """The webapp-testing skill's launch, unchanged; the page and its pixels come back.

    How long this takes is ``invoke bench --images``'s business (goal 3 s), not the test's.
    """
    box = fresh_sandbox
    title = box.sh(
        f"cat > /tmp/shot.py <<'EOF'\n{SCREENSHOT}EOF\ncd /workspace && python3 /tmp/shot.py"
    )
    assert title == "Loopback page ready"
    pixels = box.python(
        """
from PIL import Image
shot = Image.open("/tmp/shot.png").convert("RGB")
print(shot.size, shot.getpixel((100, 60)), shot.getpixel((350, 60)))
"""
    )
    assert pixels == "(400, 300) (0, 128, 255) (255, 255, 255)"


MCP_SERVER = """
from mcp.server.fastmcp import FastMCP
server = FastMCP("inventory")

@server.tool()
def stock(item: str, warehouses: int) -> str:
    \"\"\"Units of an item across warehouses.\"\"\"
    return f"{item}: {warehouses * 12} units"

server.run()
"""

MCP_CLIENT = """
import asyncio, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

async def main():
    params = StdioServerParameters(command=sys.executable, args=["/tmp/mcp_server.py"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            print([(t.name, sorted(t.inputSchema["properties"])) for t in tools.tools])
            result = await session.call_tool("stock", {"item": "bolts", "warehouses": 3})
            print(result.content[0].text)

asyncio.run(main())
"""


@pytest.mark.needs(modules=("mcp",))
def test_an_mcp_client_lists_and_calls_a_fastmcp_stdio_server(sandbox: Sandbox) -> None:
    sandbox.sh(f"cat > /tmp/mcp_server.py <<'EOF'\n{MCP_SERVER}EOF")
    out = sandbox.sh(
        f"cat > /tmp/mcp_client.py <<'EOF'\n{MCP_CLIENT}EOF\npython3 /tmp/mcp_client.py"
    )
    assert out.split("\n") == ["[('stock', ['item', 'warehouses'])]", "bolts: 36 units"]


# A stand-in for the Messages API on loopback: it answers one request with a
# reply built from what it received, and saves the request for the test to read.
# It starts the client (its arguments) only once its port is bound, and passes the
# address in STAND_IN_URL, so the client never waits for the server to be ready.
STAND_IN = """
import http.server, json, os, subprocess, sys, threading
class Messages(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        # The key travels as x-api-key or, in newer SDKs, as a bearer token.
        key = self.headers.get("x-api-key") or self.headers.get("authorization", "")
        seen = {"path": self.path, "key": key.removeprefix("Bearer "),
                "version": self.headers.get("anthropic-version"), "model": body["model"],
                "text": body["messages"][0]["content"]}
        with open("/tmp/stand-in-seen.json", "w") as saved:
            json.dump(seen, saved)
        reply = {"id": "msg_01", "type": "message", "role": "assistant", "model": body["model"],
                 "content": [{"type": "text", "text": "echo: " + seen["text"]}],
                 "stop_reason": "end_turn", "stop_sequence": None,
                 "usage": {"input_tokens": 3, "output_tokens": 2}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Messages)
threading.Thread(target=server.handle_request, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}"
sys.exit(subprocess.run(sys.argv[1:], env=dict(os.environ, STAND_IN_URL=url)).returncode)
"""

PYTHON_SDK = """
import anthropic, os
client = anthropic.Anthropic(base_url=os.environ["STAND_IN_URL"], api_key="sk-test-python",
                             max_retries=0)
message = client.messages.create(model="claude-sonnet-4-5", max_tokens=64,
                                 messages=[{"role": "user", "content": "hello from python"}])
print(message.content[0].text, message.usage.output_tokens)
"""

NODE_SDK = """
const Anthropic = require("@anthropic-ai/sdk");
const client = new Anthropic({ baseURL: process.env.STAND_IN_URL, apiKey: "sk-test-node",
                               maxRetries: 0 });
client.messages.create({ model: "claude-sonnet-4-5", max_tokens: 64,
                         messages: [{ role: "user", content: "hello from node" }] })
  .then((message) => console.log(message.content[0].text, message.usage.output_tokens));
"""


def _ask_the_stand_in(sandbox: Sandbox, client: str, run: str) -> tuple[str, dict[str, str]]:
    """Run ``client`` with ``run`` under the stand-in; the reply and what the stand-in saw."""
    reply = sandbox.sh(
        f"cat > /tmp/stand_in.py <<'EOF'\n{STAND_IN}EOF\n"
        f"cat > /tmp/client <<'EOF'\n{client}EOF\n"
        "rm -f /tmp/stand-in-seen.json\n"
        f"cd /workspace && python3 /tmp/stand_in.py {run} /tmp/client"
    )
    return reply, json.loads(sandbox.sh("cat /tmp/stand-in-seen.json"))


@pytest.mark.arm64
@pytest.mark.needs(modules=("anthropic",))
def test_the_anthropic_python_sdk_talks_to_a_loopback_stand_in(sandbox: Sandbox) -> None:
    reply, seen = _ask_the_stand_in(sandbox, PYTHON_SDK, "python3")
    assert reply == "echo: hello from python 2"
    assert seen["path"] == "/v1/messages"
    assert seen["key"] == "sk-test-python"
    assert seen["version"]  # the SDK names the API version it speaks
    assert seen["model"] == "claude-sonnet-4-5"


@pytest.mark.arm64
@pytest.mark.needs(node_modules=("@anthropic-ai/sdk",))
def test_the_anthropic_node_sdk_talks_to_a_loopback_stand_in(sandbox: Sandbox) -> None:
    reply, seen = _ask_the_stand_in(sandbox, NODE_SDK, "node")
    assert reply == "echo: hello from node 2"
    assert seen["path"] == "/v1/messages"
    assert seen["key"] == "sk-test-node"
    assert seen["text"] == "hello from node"
