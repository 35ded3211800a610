"""Seed 004 (social-media scheduler): ``AI_<TASK>_*`` variables checked at load.

Each case is one of the seed's own ``.env`` blocks.  What a provider can do comes
from the catalog: Gemini has image models (option 3), Anthropic has none ("Anthropic
does not offer image generation"), and Ollama's ``mistral`` is a text model (use
case 3, "all tasks use local Ollama").  Errors and warnings name the variable.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from polyroute import ConfigError, Settings, load_settings


def load(environ: Mapping[str, str]) -> Settings:
    return load_settings(data={}, environ=dict(environ))


def refused(environ: Mapping[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(environ)
    return info.value


# ----------------------------------------------------------- option 3: Gemini images


def test_gemini_for_images_resolves_to_a_gemini_image_model() -> None:
    s = load({"AI_IMAGE_PROVIDER": "gemini", "GEMINI_API_KEY": "k"})
    assert s.config.tasks["image"].model_ids() == ["imagen-3.0-generate-002"]
    imagen = s.catalog.lookup("imagen-3.0-generate-002")
    assert imagen.provider == "gemini" and imagen.has("image_generation")
    assert imagen.price_per_image == 0.03 and imagen.price_as_of == "2025-02-06"
    flash = s.catalog.lookup("gemini-2.0-flash-preview-image-generation")
    assert flash.provider == "gemini" and flash.has("image_generation")


def test_gemini_image_model_by_name() -> None:
    s = load(
        {
            "AI_IMAGE_PROVIDER": "gemini",
            "AI_IMAGE_MODEL": "gemini-2.0-flash-preview-image-generation",
        }
    )
    assert s.config.tasks["image"].model_ids() == ["gemini-2.0-flash-preview-image-generation"]


def test_option_3_as_written_names_a_text_model_for_images() -> None:
    """The seed's option 3 says AI_IMAGE_MODEL=gemini-2.0-flash, a text model: refused at
    load with Gemini's image models offered, rather than failing at the first image."""
    err = refused({"AI_IMAGE_PROVIDER": "gemini", "AI_IMAGE_MODEL": "gemini-2.0-flash"})
    assert err.path == "tasks.image.models[0]"
    msg = str(err)
    assert "'gemini-2.0-flash' cannot generate images" in msg
    assert "imagen-3.0-generate-002" in msg
    assert "AI_IMAGE_MODEL" in msg


# ------------------------------------------------------ providers without image models


def test_anthropic_for_images_is_refused_naming_the_provider_variable() -> None:
    err = refused({"AI_IMAGE_PROVIDER": "anthropic"})
    assert err.path == "AI_IMAGE_PROVIDER"
    msg = str(err)
    assert "'anthropic' has no image generation model" in msg
    assert "openai (dall-e-3)" in msg and "gemini (imagen-3.0-generate-002)" in msg


def test_anthropic_with_a_borrowed_image_model_name_is_refused() -> None:
    err = refused({"AI_IMAGE_PROVIDER": "anthropic", "AI_IMAGE_MODEL": "dall-e-3"})
    assert err.path == "tasks.image.models[0]"
    assert "'anthropic' has no image generation model" in str(err)
    assert "AI_IMAGE_MODEL" in str(err)


def test_use_case_3_ollama_mistral_for_images_is_refused() -> None:
    err = refused(
        {
            "AI_IMAGE_PROVIDER": "ollama",
            "AI_IMAGE_MODEL": "mistral",
            "AI_TEXT_PROVIDER": "ollama",
            "AI_TEXT_MODEL": "mistral",
            "AI_AGENT_PROVIDER": "ollama",
            "AI_AGENT_MODEL": "mistral",
            "OLLAMA_BASE_URL": "http://localhost:11434/v1",
        }
    )
    assert [p for p, _ in err.problems] == ["tasks.image.models[0]"]  # text and agent are fine
    msg = str(err)
    assert "'mistral' cannot generate images" in msg and "AI_IMAGE_MODEL" in msg


def test_an_uncatalogued_ollama_model_for_images_is_not_judged() -> None:
    # Nothing is known about ollama/llava: no capability facts, so no refusal.
    s = load({"AI_IMAGE_PROVIDER": "ollama", "AI_IMAGE_MODEL": "llava"})
    assert s.config.tasks["image"].model_ids() == ["ollama/llava"]


# ------------------------------------------------- a model its provider does not list


def test_a_model_openai_does_not_list_is_a_warning_with_close_names() -> None:
    s = load({"AI_TEXT_PROVIDER": "openai", "AI_TEXT_MODEL": "gpt-4.2"})
    assert s.config.tasks["text"].model_ids() == ["openai/gpt-4.2"]  # still loads
    [(path, msg)] = s.warnings
    assert path == "tasks.text.models[0]"
    assert "no openai model 'gpt-4.2'" in msg and "gpt-4.1" in msg
    assert "AI_TEXT_MODEL" in msg


def test_another_providers_model_is_a_warning_naming_whose_it_is() -> None:
    s = load({"AI_TEXT_PROVIDER": "anthropic", "AI_TEXT_MODEL": "gpt-4o"})
    [(path, msg)] = s.warnings
    assert path == "tasks.text.models[0]"
    assert "'gpt-4o' is openai's model, not one anthropic serves" in msg
    assert "closest anthropic models: claude-" in msg


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("ollama", "llama3"),
        ("together", "meta-llama/Llama-3-70b-chat-hf"),
        ("groq", "mixtral-8x7b-32768"),
        ("openrouter", "anthropic/claude-3.5-sonnet"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-3-opus-20250219"),
    ],
)
def test_open_catalogs_and_listed_models_load_without_warnings(provider: str, model: str) -> None:
    s = load({"AI_TEXT_PROVIDER": provider, "AI_TEXT_MODEL": model})
    assert s.warnings == []


def test_the_seeds_documented_fallbacks_load() -> None:
    s = load(
        {
            "AI_IMAGE_PROVIDER": "openai",
            "AI_IMAGE_MODEL": "dall-e-3",
            "AI_IMAGE_FALLBACK_PROVIDER": "openai",
            "AI_IMAGE_FALLBACK_MODEL": "dall-e-2",
            "AI_VIDEO_SLIDES_PROVIDER": "gemini",
            "AI_VIDEO_SLIDES_MODEL": "gemini-2.0-flash",
        }
    )
    assert s.config.tasks["image"].model_ids() == ["dall-e-3", "dall-e-2"]
    assert s.warnings == []
