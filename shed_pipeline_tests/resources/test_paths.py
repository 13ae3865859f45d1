"""The project folder's layout is written once (settings.ProjectFolder): the resource the assets use
and the Settings the CLI and the deployment use name the same files."""

from pathlib import Path

from shed_pipeline.resources import resources_for
from shed_pipeline.settings import ProjectFolder, Settings


def test_the_paths_resource_and_settings_agree_on_every_path(tmp_path):
    settings = Settings.from_env({"SHED_PIPELINE_HOME": str(tmp_path / "home"), "SHED_PIPELINE_CACHE": str(tmp_path)})
    paths = resources_for(settings)["paths"]
    folder = settings.folder
    assert paths.folder() == folder == ProjectFolder(tmp_path / "home")
    assert paths.out() == settings.local_out == folder.out
    assert paths.embedding_cache_db() == folder.embedding_cache_db
    assert paths.utility_cache_db() == folder.utility_cache_db
    assert paths.evaluation_cache() == folder.evaluation_cache
    assert paths.s3_mirror() == folder.s3_mirror
    assert paths.state("anchors.npz") == folder.state / "anchors.npz"
    assert paths.cache() == settings.downloads == tmp_path
    assert settings.lineage_path == folder.lineage and settings.dagster_home_dir == folder.dagster_home
    assert settings.asset_values == str(folder.asset_values)


def test_a_home_given_with_a_tilde_is_expanded_in_every_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.from_env({"SHED_PIPELINE_HOME": "~/project"})
    paths = resources_for(settings)["paths"]
    for path in (settings.lineage_path, settings.local_out, settings.dagster_home_dir, paths.out(), paths.state("x")):
        assert Path(path).is_relative_to(tmp_path / "project")
    assert settings.asset_values.startswith(str(tmp_path / "project"))


def test_an_s3_out_stages_results_in_the_project_folder(tmp_path):
    settings = Settings.from_env({"SHED_PIPELINE_HOME": str(tmp_path), "SHED_PIPELINE_OUT": "s3://bucket/curated"})
    paths = resources_for(settings)["paths"]
    assert settings.local_out == paths.out() == tmp_path / "out"
    assert paths.out_location() == "s3://bucket/curated"
