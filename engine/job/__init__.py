"""A job and its run: the job-folder contract with the add-on, the pipeline that runs the stages,
events and checkpoints, the result writer and reader, the process client and the engine environment."""
