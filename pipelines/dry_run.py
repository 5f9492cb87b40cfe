"""What a Dataflow dry run (``--dry_run=True``) would submit: printed so a user can check a job
before paying for it. The job is translated and its files staged locally; nothing is sent."""

from __future__ import annotations

from apache_beam.options.pipeline_options import GoogleCloudOptions, SetupOptions, WorkerOptions
from apache_beam.portability.api import beam_runner_api_pb2


def describe(result, options) -> str:
    """The job's name and place, its top-level steps, its container, the files it stages and its
    worker options; ``result`` is what ``pipeline.run()`` returned for the dry run."""
    job = getattr(result, "job", None)
    if job is None:
        return "dry run: this runner translated nothing to show (only DataflowRunner supports --dry_run)"
    cloud = options.view_as(GoogleCloudOptions)
    setup = options.view_as(SetupOptions)
    workers = options.view_as(WorkerOptions)
    components = job.proto_pipeline.components
    steps = [components.transforms[child].unique_name
             for root in job.proto_pipeline.root_transform_ids
             for child in components.transforms[root].subtransforms]
    images, staged = [], []
    for environment in components.environments.values():
        if environment.urn == "beam:env:docker:v1":
            images.append(beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image)
        for artifact in environment.dependencies:
            role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload)
            source = beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload).path
            staged.append(f"{role.staged_name} ({source.rsplit('/', 1)[-1]})")
    worker_facts = {
        "machine_type": workers.machine_type, "num_workers": workers.num_workers,
        "max_num_workers": workers.max_num_workers, "disk_size_gb": workers.disk_size_gb,
        "autoscaling": workers.autoscaling_algorithm,
    }
    lines = [
        "dry run: nothing was submitted; this is the job Dataflow would get",
        f"job           {job.proto.name}  project {cloud.project}  region {cloud.region}",
        f"steps         {', '.join(steps)}",
        f"container     {', '.join(sorted(set(images))) or 'the runner default'}",
        f"setup file    {setup.setup_file or 'none (pass --setup_file ./setup.py, or a custom --sdk_container_image)'}",
        f"requirements  {setup.requirements_file or 'none beyond the setup file (it installs requirements.txt)'}",
        f"staged        {', '.join(sorted(staged)) or 'nothing'}",
        f"temp          {cloud.temp_location}",
        "workers       " + ", ".join(f"{name} {value}" for name, value in worker_facts.items() if value is not None)
        if any(value is not None for value in worker_facts.values()) else "workers       Dataflow's defaults",
    ]
    return "\n".join(lines)
