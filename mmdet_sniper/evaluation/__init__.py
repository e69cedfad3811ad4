from .proposals_dump import SniperProposalsDump

__all__ = ['SniperProposalsDump']
