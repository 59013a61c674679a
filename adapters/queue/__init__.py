"""Run queues: the job engine (SAQ on Redis) behind the ``RunQueue`` port."""
