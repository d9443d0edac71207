"""Studies of the proxy task and of search results, each a command:

python -m studies.variance    is the reward worth optimising? (seed noise vs spread, ranking)
python -m studies.retrain     retrain genotypes (a run's best, paper, FPN) on a longer schedule
python -m studies.reproduce   retrain a run's records here: same rewards as recorded?
"""
