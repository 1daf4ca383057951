"""The Gradio page: a caption tab and a batch tab, phone first; the same functions as Gradio API endpoints."""

from __future__ import annotations

from typing import Any

import gradio as gr
from starlette.routing import Mount

from ..images import IMAGE_EXTENSIONS
from ..methods import METHODS
from ..model_catalog import shipped_assets_dir
from .http_api import http_api
from .messages import user_errors
from .service import BEAM_SIZES, LENGTH_PENALTIES, MAX_LENGTHS, NBEST_HEADERS, CaptionService, UIConfig

CSS = """
.summary { display: flex; flex-wrap: wrap; gap: 6px; }
.badge, .tag { display: inline-block; white-space: nowrap; border-radius: 12px; padding: 2px 10px; }
.badge { color: #fff; font-weight: 600; }
.tag { border: 1px solid var(--border-color-primary); }
.tag small { opacity: 0.7; }
.heatmaps { display: grid; grid-template-columns: repeat(auto-fill, minmax(84px, 1fr)); gap: 8px; }
.heatmaps figure { margin: 0; }
.heatmaps img { width: 100%; height: auto; display: block; border-radius: 4px; }
.heatmaps figcaption { text-align: center; font-size: 0.9em; overflow-wrap: anywhere; }
.heatmap-legend { display: flex; align-items: center; gap: 8px; max-width: 360px; }
.heatmap-bar { flex: 1; height: 12px; border-radius: 6px; }
.heatmap-note, .nbest-note { font-size: 0.85em; opacity: 0.8; margin: 4px 0 8px; }
.batch-scroll { overflow-x: auto; }
.batch-table { width: 100%; border-collapse: collapse; }
.batch-table th, .batch-table td { text-align: left; vertical-align: top; padding: 6px; overflow-wrap: anywhere;
    border-bottom: 1px solid var(--border-color-primary); }
.batch-photo { width: 96px; font-size: 0.8em; }
.batch-photo img.thumb { display: block; max-width: 72px; max-height: 72px; border-radius: 4px; }
.batch-table .summary { margin-top: 6px; font-size: 0.85em; }
.batch-table .tag { white-space: normal; }
@media (max-width: 640px) { .batch-photo { width: 76px; } .batch-photo img.thumb { max-width: 64px; } }
.batch-error { color: var(--error-text-color, #b91c1c); }
/* Gradio hides "Use via API" on narrow screens, leaving a lone divider: keep the link, drop the divider. */
footer .show-api { display: flex !important; }
footer .divider { display: none; }
"""

# Runs in the browser the moment the image or a setting changes: no old output stays beside a new photo.
CLEAR_OUTPUTS_JS = "(...values) => ['', [], null, '', '', '']"


def example_images() -> list[str]:
    """The photos shipped in ``assets/examples`` (licences in its README)."""
    folder = shipped_assets_dir("examples")
    if folder is None:
        return []
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


class CaptionerBlocks(gr.Blocks):
    """The page's Blocks, with the service that holds its models (close it when done)."""

    captioner_service: CaptionService


def build_app(config: UIConfig | None = None) -> CaptionerBlocks:
    """The Blocks app; ``app.captioner_service`` holds the loaded models (close it when done)."""
    config = config or UIConfig()
    service = CaptionService(config)
    default = service.pool.default
    defaults = service.pool.get(default).decoding
    status_line, about = service.load_model(default)

    with CaptionerBlocks(title="captioner", delete_cache=(3600, 3600)) as app:
        gr.Markdown("## captioner · describe a photo in words")
        with gr.Tab("Caption"):
            with gr.Row():
                with gr.Column(min_width=300):
                    image = gr.Image(type="filepath", sources=["upload", "clipboard", "webcam"], elem_id="image",
                                     label="Photo: drop, paste or take one", height=300)
                    clear = gr.ClearButton(value="Clear", elem_id="clear", size="sm")
                    examples = example_images()
                    if examples:
                        gr.Examples([[path] for path in examples], inputs=[image], label="Or try one of these",
                                    elem_id="examples")
                with gr.Column(min_width=300):
                    caption = gr.Textbox(label="Caption", elem_id="caption", interactive=False, lines=2,
                                         buttons=["copy"])
                    summary = gr.HTML(elem_id="summary")
                    language = gr.Dropdown(service.languages.choices(), value="en", label="Language",
                                           info="Translates the caption and the other captions it considered",
                                           elem_id="language")
                    nbest = gr.Dataframe(headers=NBEST_HEADERS, label="Other captions it considered", wrap=True,
                                         interactive=False, column_widths=["12%", "64%", "24%"], elem_id="nbest",
                                         buttons=["copy"])
                    gr.Markdown("Score: how likely the model finds the caption, as its log-probability divided "
                                "by its length to the power of the length penalty (per word at 1.0, the default "
                                "model's); closer to 0 is more likely. A model that reranks by "
                                "consensus (flickr8k-ensemble does) orders them by how well they agree with the "
                                "captions of similar training photos instead.", elem_classes="nbest-note")
                    explain = gr.HTML(elem_id="explain")  # what post-processors drew; empty, it sits last
            with gr.Accordion("Where the model looked, word by word", open=True, elem_id="heatmaps-panel") as panel:
                heatmaps = gr.HTML(elem_id="heatmaps")
            with gr.Accordion("Full result (JSON)", open=False):
                details = gr.JSON(elem_id="details", show_label=False)

        with gr.Tab("Batch"):
            files = gr.File(file_count="multiple", type="filepath", label="Photos", elem_id="batch-files",
                            height=240)
            run_batch = gr.Button("Caption all", variant="primary", elem_id="batch-button")
            table = gr.HTML(elem_id="batch-table")
            downloads = gr.File(label="Download the captions (CSV, JSON lines)", file_count="multiple",
                                interactive=False, elem_id="downloads")

        with gr.Accordion("Settings: model, decoding, post-processors", open=False, elem_id="settings"):
            with gr.Row():
                model = gr.Dropdown(service.pool.labels(), value=default, label="Model",
                                    info="Which trained model writes the caption")
                method = gr.Radio(METHODS, value=defaults.method, label="Decoding",
                                  info="beam: the likeliest caption; greedy: fastest; sample: varied, and never guided")
                guide = gr.Checkbox(value=defaults.guide, label="Name recognised objects", elem_id="guide",
                                    info="Put what the encoder's ImageNet classifier sees into the caption (beam and greedy)")
            with gr.Row():
                beam_size = gr.Slider(*BEAM_SIZES, value=defaults.beam_size, step=1, label="Beam size",
                                      info="Captions kept while searching; more is slower, sometimes better")
                max_length = gr.Slider(*MAX_LENGTHS, value=defaults.max_length, step=1, label="Max length (words)",
                                       info="The caption stops at this many words")
                length_penalty = gr.Slider(*LENGTH_PENALTIES, value=defaults.length_penalty, step=0.1,
                                           label="Length penalty", info="0 favours short captions, 1 and more longer")
            # allow_custom_value: Gradio does not check API values against the menu; the post-processing
            # chain checks every spec, the same way for both endpoints, the CLI and the Python API.
            postprocess = gr.Dropdown(service.specs, value=["sentiment"], multiselect=True, elem_id="postprocess",
                                      label="Post-processors (in order)", allow_custom_value=True,
                                      info="Run on each caption: sentiment is shown as a badge; translations "
                                           "are better chosen with Language")
            # Not on the page: API callers set it to get heat maps inline; the page draws them after the caption.
            inline_heatmaps = gr.Checkbox(False, visible=False, label="heatmaps")
        status = gr.Markdown(status_line, elem_id="status")
        about_note = gr.Markdown(about, elem_id="about")
        gr.Markdown("From code: the [HTTP API](v1/docs) (`POST /v1/caption`), or Gradio's (*Use via API*, below).",
                    elem_id="apis")

        outputs = [caption, nbest, details, summary, explain, heatmaps]
        panel_open = gr.State(True)
        controls = [model, method, beam_size, max_length, length_penalty, postprocess, guide, language]
        triggers = [image.change, model.change, method.change, beam_size.release, max_length.release,
                    length_penalty.release, postprocess.change, guide.change, language.change]
        # Not Gradio's batch=True: there one bad input fails every request batched with it. Requests run
        # concurrently and captioner.ui.batcher joins them into one forward pass. preprocess=False: the
        # handler reads the upload itself, so an unreadable file gets our one-line message.
        caption_events: dict[str, Any] = dict(concurrency_limit=config.max_batch_size, concurrency_id="caption",
                                              preprocess=False)
        # The API endpoint (and MCP tool): a trigger the page does not show, so API callers are not page sessions.
        api_trigger = gr.Button(visible=False)
        api_trigger.click(user_errors(service.caption), [image, *controls, inline_heatmaps], outputs,
                          api_name="caption", **caption_events)
        # The page: every output cleared in the browser the moment the photo or a setting changes, then captioned;
        # a request overtaken by a newer one shows nothing (captioner.ui.service.PageSessions).
        captioned = gr.on(triggers, None, outputs=outputs, js=CLEAR_OUTPUTS_JS, queue=False).then(
            user_errors(service.caption_for_page), [image, *controls], outputs, api_visibility="private",
            trigger_mode="multiple", **caption_events)
        captioned.success(service.draw_heatmaps, panel_open, heatmaps, api_visibility="private",
                          concurrency_limit=config.max_batch_size, concurrency_id="heatmaps")
        panel.expand(lambda: True, None, panel_open, api_visibility="private", queue=False).then(
            service.draw_heatmaps, panel_open, heatmaps, api_visibility="private", concurrency_id="heatmaps")
        panel.collapse(lambda: False, None, panel_open, api_visibility="private", queue=False)
        clear.add([image, *outputs])

        run_batch.click(user_errors(service.caption_batch), [files, *controls], [table, downloads],
                        api_name="caption_batch", concurrency_limit=1)
        files.change(lambda: ("", None), None, [table, downloads], api_visibility="private", queue=False)
        model.change(user_errors(service.load_model), model, [status, about_note], api_visibility="private",
                     concurrency_id="loader", concurrency_limit=1)

    app.queue(max_size=config.queue_size, default_concurrency_limit=1)
    app.captioner_service = service
    return app


def launch(app: CaptionerBlocks, **options: Any) -> tuple[Any, str, str]:
    """Serve the page, Gradio's API and the plain HTTP API at ``/v1`` (``options`` go to ``Blocks.launch``)."""
    service: CaptionService = app.captioner_service
    return app.launch(max_file_size=service.config.max_file_size, css=CSS, footer_links=["api"],
                      app_kwargs={"routes": [Mount("/v1", app=http_api(service))]}, **options)
